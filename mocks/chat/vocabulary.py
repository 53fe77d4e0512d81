"""Names the chat mock journals and the chat invariants read: one spelling for both sides."""

SERVICE = "chat"   # the service's name: journal ``service``, rule ``match.service``, links, fixtures

OVERLIMIT_ALARM = "Alert.RequestOverLimit"   # webhook command: a REST command went over its rate limit
ALARM_SERVICE, ALARM_COMMAND, ALARM_LIMIT = "ServiceName", "Command", "Limit"   # fields of its body

NOT_FOUND = "not_found"   # a request outside /v4/<servicename>/<command>
# the REST commands the mock implements (``mocks/chat/commands.py``), as request actions
REST_COMMANDS = ("openim/sendmsg", "openim/batchsendmsg", "im_open_login_svc/account_import",
                 "im_open_login_svc/multiaccount_import", "group_open_http_svc/create_group",
                 "group_open_http_svc/send_group_msg")
# the webhook commands Chat sends (protocols 3.3, 3.4), as callback actions
WEBHOOK_COMMANDS = (
    "State.StateChange", "Profile.CallbackPortraitSet",
    "Sns.CallbackPrevFriendAdd", "Sns.CallbackPrevFriendResponse", "Sns.CallbackFriendAdd",
    "Sns.CallbackFriendDelete", "Sns.CallbackBlackListAdd", "Sns.CallbackBlackListDelete",
    "C2C.CallbackBeforeSendMsg", "C2C.CallbackAfterSendMsg", "C2C.CallbackAfterMsgReport",
    "C2C.CallbackAfterMsgWithDraw",
    "Group.CallbackBeforeCreateGroup", "Group.CallbackAfterCreateGroup", "Group.CallbackBeforeApplyJoinGroup",
    "Group.CallbackBeforeInviteJoinGroup", "Group.CallbackAfterNewMemberJoin", "Group.CallbackAfterMemberExit",
    "Group.CallbackBeforeSendMsg", "Group.CallbackAfterSendMsg", "Group.CallbackSendMsgException",
    "Group.CallbackAfterRecallMsg", "Group.CallbackAfterGroupFull", "Group.CallbackAfterGroupDestroyed",
    "Group.CallbackAfterGroupInfoChanged", "Group.CallbackOnMemberStateChange",
    "Group.CallbackOnDailyGroupQuotaAlarm",
    "Bot.OnC2CMessage", "Bot.OnGroupMessage", "ContentCallback.ResultNotify", "Push.OfflinePush",
    "Push.AllMemberPush", "OfficialAccount.CallbackBeforeSendMsg",
    OVERLIMIT_ALARM,
)
# every action its requests and callbacks are journaled with (rule ``match.action`` is checked against these)
ACTIONS = (*REST_COMMANDS, *WEBHOOK_COMMANDS, NOT_FOUND)

# webhook forgeries the mock can apply (rule ``effect.callback``)
FORGERIES = ("wrong_sdkappid", "bad_sign", "missing_sign", "stale_time")


def rest_action(service_name: str, command: str) -> str:
    """The action of a REST request ``/v4/<servicename>/<command>``."""
    return f"{service_name}/{command}"
