import sys

try:
    from .cli import main
except KeyboardInterrupt:   # Ctrl-C while numpy & co. import: one line, not a traceback
    print("pimem: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
