from devtools.es import main

raise SystemExit(main())
