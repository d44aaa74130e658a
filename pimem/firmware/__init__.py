"""The firmware layer: what the VideoCore firmware is and how to talk to it.

Message bytes (protocol), the transports (/dev/vcio, or the emulator standing in for the firmware), one
call per mailbox tag (mailbox), the allocation flags and bus-address aliases the firmware speaks in
(memflags), and board revision decoding (board). It may import only exc, safefs and paths; it knows no
numpy or pandas.
"""
