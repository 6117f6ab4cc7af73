"""What the pipeline's services agree on: topic names and the events that travel between them.
The contract is written down in docs/pipeline.md."""
