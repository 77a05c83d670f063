-- A chat message's id as its sender chose it (a UUID made when the message was written, checked by
-- signaling.messages): a message sent again because its answer was lost or uncertain (the socket dropped, the
-- commit's reply never came) is stored once. Messages stored before this have none, and NULLs never collide.
ALTER TABLE consult_chat ADD COLUMN client_id text;
CREATE UNIQUE INDEX consult_chat_client_id ON consult_chat (consult_id, from_user, client_id);
