"""Stores: SQL for one data area each, returning attrs rows."""
