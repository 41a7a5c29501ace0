"""Console scripts of the example: each becomes an image."""
import psycopg2
import psycopg2.extensions


def version() -> None:
    """Print the versions of psycopg2 and of the libpq it was built against."""
    print("psycopg2 %s, libpq %d" % (psycopg2.__version__.split()[0],
                                      psycopg2.extensions.libpq_version()))


def report() -> None:
    """The same, as a table (needs the pgtool-report extra)."""
    import tabulate

    print(tabulate.tabulate([["psycopg2", psycopg2.__version__.split()[0]],
                             ["libpq", psycopg2.extensions.libpq_version()]],
                            headers=["component", "version"]))
