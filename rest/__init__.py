"""HTTP plumbing shared by every API, plus the non-client REST surfaces."""
