"""pytest plugin (entry point ``pytest11``): fixtures for the mocks and the scenario runner."""
