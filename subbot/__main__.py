from subbot.cli import main

main()
