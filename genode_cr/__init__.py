"""genode_cr: talking to one board: checkpoint model, board link, restore planner, and the
emulated Genode/Fiasco.OC board (emu/) with its component runtime in C."""

__version__ = "0.1.0"
