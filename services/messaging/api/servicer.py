"""gRPC servicer for messaging: protobuf <-> use cases."""

from __future__ import annotations

import grpc

from brandclub.messaging.v1 import messaging_service_pb2 as pb
from brandclub.messaging.v1 import messaging_service_pb2_grpc as pb_grpc
from libs.db import Database
from libs.protoconv import timestamp
from services.messaging import usecases


class MessagingServicer(pb_grpc.MessagingServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def ListInboxMessages(self, request: pb.ListInboxMessagesRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.ListInboxMessagesResponse:
        async with self._db.connection() as conn:
            page = await usecases.list_inbox(conn, request.brand_id, request.account_id,
                                             request.page_size, request.page_token)
        return pb.ListInboxMessagesResponse(
            messages=[pb.InboxMessage(message_id=m.message_id, brand_id=m.brand_id,
                                      account_id=m.account_id, title=m.title, body=m.body,
                                      read=m.read, create_time=timestamp(m.created_at))
                      for m in page.messages],
            next_page_token=page.next_page_token,
            unread_count=page.unread_count,
        )
