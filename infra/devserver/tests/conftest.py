pytest_plugins = ["devserver.testing"]
