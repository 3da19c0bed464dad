from sensor.seccomplog.collector import main

raise SystemExit(main())
