"""The Azurite the tests start answers Azure's own SDKs (what export, the blob backend and the queue sink stand on)."""

from __future__ import annotations

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from tests.azurite import Azurite


def test_blob_round_trip(azurite: Azurite) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container("smoke")
    container.upload_blob("a/b.txt", b"hello")
    assert container.download_blob("a/b.txt").readall() == b"hello"
    assert [blob.name for blob in container.list_blobs()] == ["a/b.txt"]
    container.delete_container()


def test_queue_round_trip(azurite: Azurite) -> None:
    queue = QueueClient.from_connection_string(azurite.connection_string, "smoke")
    queue.create_queue()
    queue.send_message("hello")
    messages = list(queue.receive_messages())
    assert [message.content for message in messages] == ["hello"]
    queue.delete_queue()
