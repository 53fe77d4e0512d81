"""Mock servers of the outside services. One subpackage per service; ``mocks.base`` is what they share."""
