"""The four DDAS pipeline services, each runnable on its own."""
