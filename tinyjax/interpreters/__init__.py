"""The interpreters: each transform is a ``Trace``/``Tracer`` pair with its rule table --
jvp (``ad``), batching, partial evaluation and staging into a jaxpr."""
