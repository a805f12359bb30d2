from nlpapp.cli.main import main

raise SystemExit(main())
