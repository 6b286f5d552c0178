"""Object stores for the archive API tests (moto S3, Azurite), session-wide."""

from tests.objectstores.fixtures import azure, s3

__all__ = ["azure", "s3"]
