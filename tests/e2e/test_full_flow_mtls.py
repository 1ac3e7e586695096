"""The whole flow over mutual TLS: both servers require client certificates, the data service fetches
its keys from the auth service over mTLS, and the client library presents its certificate to both."""

from __future__ import annotations

from pathlib import Path

from tessera.inventory.v1 import inventory_pb2

from data_service.app import create_server as create_data_server
from data_service.migrations import SCRIPT_LOCATION as DATA_MIGRATIONS
from shared.client import AuthClient, ChannelSettings, InventoryClient, TlsOptions
from shared.config import DataSettings
from shared.migrations import upgrade_to_head
from tests.support.auth_server import running_auth_server
from tests.support.certs import localhost_tls_files
from tests.support.databases import fresh_database
from tests.support.servers import running

PASSWORD = "correct horse battery staple"


async def test_register_login_stock_and_order_over_mutual_tls(backend: str, tmp_path: Path) -> None:
    pki = localhost_tls_files(tmp_path / "pki")
    server_tls = {
        "tls_cert_file": pki.server.cert_file,
        "tls_key_file": pki.server.key_file,
        "tls_client_ca_file": pki.ca_file,
    }
    client = ChannelSettings(
        tls=TlsOptions(
            root_certificates=pki.ca_file,
            client_certificate=pki.client.cert_file,
            client_key=pki.client.key_file,
        )
    )
    async with (
        fresh_database(backend, tmp_path, "auth") as auth_url,
        fresh_database(backend, tmp_path, "data") as data_url,
        running_auth_server(auth_url, tmp_path, **server_tls) as auth,
    ):
        await upgrade_to_head(DATA_MIGRATIONS, data_url)
        data_settings = DataSettings(
            database_url=data_url,
            metrics_port=0,
            auth_target=f"localhost:{auth.port}",
            auth_tls_ca_file=pki.ca_file,
            auth_tls_cert_file=pki.client.cert_file,
            auth_tls_key_file=pki.client.key_file,
            **server_tls,
        )
        data = await create_data_server(data_settings)
        async with running(data) as data_port:
            await auth.create_user("sam@example.com", PASSWORD, role="staff")
            async with (
                AuthClient(f"localhost:{auth.port}", settings=client) as staff_auth,
                AuthClient(f"localhost:{auth.port}", settings=client) as customer_auth,
            ):
                await customer_auth.register("ada@example.com", PASSWORD, "Ada")
                async with (
                    InventoryClient(
                        f"localhost:{data_port}",
                        tokens=staff_auth.login("sam@example.com", PASSWORD),
                        settings=client,
                    ) as staff,
                    InventoryClient(
                        f"localhost:{data_port}",
                        tokens=customer_auth.login("ada@example.com", PASSWORD),
                        settings=client,
                    ) as customer,
                ):
                    product = await staff.create_product(
                        inventory_pb2.Product(
                            sku="MTLS-1",
                            name="Padlock",
                            price=inventory_pb2.Money(currency_code="EUR", minor_units=900),
                        ),
                        initial_stock=3,
                    )
                    order = await customer.create_order([(product.id, 2)])
                    again = await customer.get_order(order.id)
                    after = await staff.get_product(product.id)

    assert again.status == inventory_pb2.ORDER_STATUS_PLACED
    assert again.total.minor_units == 1800
    assert after.stock_on_hand == 1
