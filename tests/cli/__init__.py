"""Tests of the ``dynasync`` command line against the emulator over real TLS."""
