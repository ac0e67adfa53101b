"""Load and benchmark suite of the warehouse. It talks to the warehouse over HTTP only."""
