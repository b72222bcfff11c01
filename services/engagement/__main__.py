from services.engagement.main import main

main()
