from lawhub_actors.cli import main

raise SystemExit(main())
