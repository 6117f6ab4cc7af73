"""The DDAS pull API (DDAS-SHV.yaml, API v1.0): the reference supplier server
(`ddas supplier-api serve FILE`), and the payload signing and paging that the server and the
collector (services/ingest/collect) share.

- `signing`: the `Digest` header (RFC 3230, SHA-256) and the `nlgov-adr-payload-sig` header (a
  detached JAdES JWS, PS256, x5c chain, only the digest signed), made and verified;
- `pki`: a throwaway CA and signing certificate, for a server started without its own;
- `pages`: a DDAS document cut into pages of trajectories, and pages put back together;
- `server`: the FastAPI application (OAuth2 client-credentials token endpoint, POST /gegevens).
"""
