"""Library functions behind the commands: each reads its inputs, calls the layers below and
writes its outputs; the command line only parses options and prints."""
