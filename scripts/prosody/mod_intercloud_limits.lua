-- mod_intercloud_limits: the federation's limits on what a client may send.
--
-- Brokers parse XMPP with rxml, whose tokens (attribute values, names) are
-- limited to 8192 bytes: a longer attribute in a relayed stanza would break
-- every receiving broker's connection, and a MUC room would replay the
-- offending presence after each reconnect. Prosody's own c2s stanza limit
-- cannot go below 10000 bytes, so this module refuses, at the sender's host,
-- any stanza longer than intercloud_max_stanza_bytes (default 8192) or with
-- an attribute value longer than intercloud_max_attribute_bytes (default
-- 4096), and answers the sender with a policy-violation error.

local st = require "util.stanza";

local max_stanza = module:get_option_number("intercloud_max_stanza_bytes", 8192);
local max_attribute = module:get_option_number("intercloud_max_attribute_bytes", 4096);

local function has_long_attribute(tag)
	for _, value in pairs(tag.attr) do
		if type(value) == "string" and #value > max_attribute then
			return true;
		end
	end
	for _, child in ipairs(tag) do
		if type(child) == "table" and has_long_attribute(child) then
			return true;
		end
	end
	return false;
end

local function enforce(event)
	local stanza = event.stanza;
	local size = #tostring(stanza);
	if size <= max_stanza and not has_long_attribute(stanza) then
		return nil;
	end
	module:log("warn", "refused a %d-byte <%s/> from %s: over the federation's limits",
		size, stanza.name, tostring(event.origin.full_jid or stanza.attr.from));
	if stanza.attr.type ~= "error" and stanza.attr.type ~= "result" then
		event.origin.send(st.error_reply(stanza, "modify", "policy-violation",
			"stanza exceeds the federation's limits (" .. max_stanza .. " bytes, attributes "
			.. max_attribute .. " bytes)"));
	end
	return true;
end

for _, kind in ipairs({ "presence", "message", "iq" }) do
	for _, target in ipairs({ "bare", "full", "host" }) do
		module:hook("pre-" .. kind .. "/" .. target, enforce, 1000);
	end
end
