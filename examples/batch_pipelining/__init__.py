"""HTTP batch pipelining: a dependent chain of calls in one POST, against one POST per call."""
