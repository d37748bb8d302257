package api

// Message types of PROTOCOL §7, in one place so that "who handles X" is one grep.
const (
	TypeIdentification         = "identification"
	TypeChallenge              = "challenge"
	TypeChallengeResponse      = "challenge_response"
	TypeIdentificationResponse = "identification_response"
	TypeRegister               = "register"
	TypeRegisterResponse       = "register_response"
	TypePing                   = "ping"
	TypePong                   = "pong"
	TypeAddCommunity           = "add_community"
	TypeGetCommunities         = "get_communities"
	TypeGetCommunity           = "get_community" // the seed's spelling, accepted as a request
	TypeRemoveCommunity        = "remove_community"
	TypeSettingsSave           = "settings_save"
	TypeSettingsLoad           = "settings_load"
	TypeSettingsList           = "settings_list"
	TypeDeleteUser             = "delete_user"
	TypeFunction               = "function"
	TypeUpdate                 = "update"
	TypeWebRTCSDP              = "webrtc_sdp"
	TypeWebRTCICE              = "webrtc_ice"
	TypeStartStream            = "start_stream"
	TypeEndStream              = "end_stream"
	TypeWatchStream            = "watch_stream"
)

// Error types of PROTOCOL §2.
const (
	ErrTypeGeneric          = "error"
	ErrTypeProtocol         = "error_protocol"
	ErrTypeInvalidData      = "error_invalid_data"
	ErrTypeInvalidUserID    = "error_invalid_user_id"
	ErrTypeNotFound         = "error_not_found"
	ErrTypeNotAuthenticated = "error_not_authenticated"
	ErrTypeInvalidChallenge = "error_invalid_challenge"
	ErrTypeInvalidSecret    = "error_invalid_secret"
	ErrTypeInvalidPublicKey = "error_invalid_public_key"
	ErrTypeNoCallID         = "error_no_call_id"
	ErrTypeInvalidCallID    = "error_invalid_call_id"
	ErrTypePermission       = "error_permission"
	ErrTypeConflict         = "error_conflict"
	ErrTypeRateLimited      = "error_rate_limited"
	ErrTypeInternal         = "error_internal"
)

// Update results pushed to clients.
const (
	ResultCommunitiesChanged = "communities_changed"
	ResultSettingsChanged    = "settings_changed"
)

// WebSocket close codes used by the server (RFC 6455 §7.4 and PROTOCOL §5.1).
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001
	CloseUnsupported   = 1003
	CloseInvalidData   = 1007
	ClosePolicy        = 1008
	CloseTooBig        = 1009
	CloseInternalError = 1011
	CloseKicked        = 4001
	CloseBanned        = 4003
)
