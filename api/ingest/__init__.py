"""The ingest decoder, in pipeline order.

body (size-capped read, gzip/zstd) → decoding (dispatch by Content-Type) → json_input / arrow_input
(the body's events as columns) → normalize, timestamps, event_ids (one field each) → columns and
validation (per-index errors) → one Arrow batch of the valid events. body_errors and textscan are
the shared error and text-scanning helpers. Nothing here touches a store.
"""
