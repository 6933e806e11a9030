"""PLC protocols' framing as pure codecs (bytes in, bytes out), shared by the gateway's drivers,
the simulators' servers and the register maps that name their devices."""
