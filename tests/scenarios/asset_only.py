"""Every iteration fetches the embedded target's 200 KB asset (about 5 s on a low-end 3G phone)."""

from locust import FastHttpUser, task


class AssetReader(FastHttpUser):
    @task
    def asset(self) -> None:
        self.client.get("/static/asset.bin", name="/static/asset.bin")
