"""The test services themselves: each is up and listens on loopback only (checked again here, visibly)."""

from __future__ import annotations


def test_postgres_listens_on_loopback_only(postgres):
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=postgres.port, user="dse", password=postgres.password, dbname="optuna") as c:
        assert c.execute("select current_database()").fetchone() == ("optuna",)
    print("\n".join(postgres.sockets))


def test_mlflow_server_listens_on_loopback_only(mlflow_server):
    from mlflow.tracking import MlflowClient

    assert MlflowClient(mlflow_server.uri).search_experiments()  # the Default experiment
    print("\n".join(mlflow_server.sockets))


def test_ray_cluster_listens_on_loopback_only(ray_cluster):
    print("\n".join(ray_cluster.sockets))
