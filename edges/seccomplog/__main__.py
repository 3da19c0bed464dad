from edges.seccomplog.collector import main

raise SystemExit(main())
