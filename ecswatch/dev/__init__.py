"""Development tools: the embedded emulator, the event simulator and publisher, the demo.

Nothing in the daemon imports this package; it needs moto only where the emulator starts.
"""
