"""Facts from the providers' published documents that the catalog tests compare against."""
