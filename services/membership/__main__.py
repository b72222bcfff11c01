from services.membership.main import main

main()
