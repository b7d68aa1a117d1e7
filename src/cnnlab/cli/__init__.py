"""The ``cnnlab`` command line: wiring only, every command lives in its own module."""
