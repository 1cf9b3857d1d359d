"""The Zhengzhengding (郑政钉) connector: signed client, target adapter and simulator (zzd-api.md)."""
