"""The media repository: `repository.py` (uploads and downloads), `storage.py` (the
local store and the storage backends), `remote.py` (fetching remote media over
federation), `retention.py` (the clean-up job)."""
