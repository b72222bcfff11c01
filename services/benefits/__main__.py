from services.benefits.main import main

main()
