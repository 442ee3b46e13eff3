"""One module per book chapter: its models, tables, findings and the talk's numbers beside them."""
