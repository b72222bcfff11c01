from services.messaging.main import main

main()
