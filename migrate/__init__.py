"""migrate: the distributed service that moves checkpointed Genode components between
boards: agent, coordinator, checkpoint store and the `migrate` CLI."""

__version__ = "0.1.0"
