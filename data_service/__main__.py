from data_service.cli import main

main()
