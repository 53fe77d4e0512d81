// DescribeCaptchaResult through the official Tencent Cloud SDK for Java, unmodified, pointed at a local
// endpoint the documented way (HttpProfile.setEndpoint + setProtocol). Compiled by `make setup`:
//   java -cp 'classes:lib/*' VerifyTicket '[{"endpoint": "127.0.0.1:PORT", "secretId": "...",
//        "secretKey": "...", "action": "DescribeCaptchaResult", "params": {...}}, ...]'
// Prints one JSON line per call: {"ok": true, "response": {...}} or {"ok": false, "code", "message", "requestId"}.
import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.tencentcloudapi.captcha.v20190722.CaptchaClient;
import com.tencentcloudapi.captcha.v20190722.models.DescribeCaptchaMiniResultRequest;
import com.tencentcloudapi.captcha.v20190722.models.DescribeCaptchaResultRequest;
import com.tencentcloudapi.common.AbstractModel;
import com.tencentcloudapi.common.Credential;
import com.tencentcloudapi.common.exception.TencentCloudSDKException;
import com.tencentcloudapi.common.profile.ClientProfile;
import com.tencentcloudapi.common.profile.HttpProfile;

public class VerifyTicket {
    public static void main(String[] argv) {
        for (JsonElement call : JsonParser.parseString(argv[0]).getAsJsonArray()) {
            System.out.println(new Gson().toJson(call(call.getAsJsonObject())));
        }
    }

    static JsonObject call(JsonObject a) {
        HttpProfile hp = new HttpProfile();
        hp.setEndpoint(a.get("endpoint").getAsString());
        hp.setProtocol(a.has("protocol") ? a.get("protocol").getAsString() : HttpProfile.REQ_HTTP);
        hp.setReadTimeout(10);
        Credential cred = new Credential(a.get("secretId").getAsString(), a.get("secretKey").getAsString());
        CaptchaClient client = new CaptchaClient(cred, "", new ClientProfile(ClientProfile.SIGN_TC3_256, hp));
        String action = a.has("action") ? a.get("action").getAsString() : "DescribeCaptchaResult";
        String params = a.get("params").toString();
        JsonObject out = new JsonObject();
        try {
            AbstractModel response = action.equals("DescribeCaptchaMiniResult")
                ? client.DescribeCaptchaMiniResult(AbstractModel.fromJsonString(params, DescribeCaptchaMiniResultRequest.class))
                : client.DescribeCaptchaResult(AbstractModel.fromJsonString(params, DescribeCaptchaResultRequest.class));
            out.addProperty("ok", true);
            out.add("response", JsonParser.parseString(AbstractModel.toJsonString(response)));
        } catch (TencentCloudSDKException e) {
            out.addProperty("ok", false);
            out.addProperty("code", e.getErrorCode());
            out.addProperty("message", e.getMessage());
            out.addProperty("requestId", e.getRequestId());
        }
        return out;
    }
}
