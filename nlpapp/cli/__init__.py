"""The click command line: options -> a library call -> rendering."""
