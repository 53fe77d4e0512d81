// DescribeCaptchaResult through the official Tencent Cloud SDK for Go, unmodified, pointed at a local
// endpoint the documented way (ClientProfile.HttpProfile.Endpoint + Scheme). The module proxy serves
// the SDK's common module but not its captcha package, so the call goes through the SDK's own
// CommonClient (common.NewCommonClient + tchttp.NewCommonRequest("captcha", version, action)),
// which signs and sends exactly as the generated captcha client does (both call Client.Send). Usage:
//   captcha-client '[{"endpoint": "127.0.0.1:PORT", "secretId": "...", "secretKey": "...",
//                     "action": "DescribeCaptchaResult", "params": {...}}, ...]'
// Prints one JSON line per call: {"ok": true, "response": {...}} or {"ok": false, "code", "message", "requestId"}.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
)

type args struct {
	Endpoint  string                 `json:"endpoint"`
	Scheme    string                 `json:"scheme"`
	SecretID  string                 `json:"secretId"`
	SecretKey string                 `json:"secretKey"`
	Action    string                 `json:"action"`
	Params    map[string]interface{} `json:"params"`
}

func emit(v map[string]interface{}) {
	out, _ := json.Marshal(v)
	fmt.Println(string(out))
}

func main() {
	var calls []args
	if len(os.Args) != 2 || json.Unmarshal([]byte(os.Args[1]), &calls) != nil {
		fmt.Fprintln(os.Stderr, "usage: captcha-client '[<json arguments>, ...]'")
		os.Exit(2)
	}
	for _, a := range calls {
		call(a)
	}
}

func call(a args) {
	if a.Action == "" {
		a.Action = "DescribeCaptchaResult"
	}
	if a.Scheme == "" {
		a.Scheme = "HTTP"
	}
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = a.Endpoint
	cpf.HttpProfile.Scheme = a.Scheme
	cpf.HttpProfile.ReqTimeout = 10
	client := common.NewCommonClient(common.NewCredential(a.SecretID, a.SecretKey), "", cpf)
	request := tchttp.NewCommonRequest("captcha", "2019-07-22", a.Action)
	if err := request.SetActionParameters(a.Params); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	response := tchttp.NewCommonResponse()
	err := client.Send(request, response)
	if sdkErr, ok := err.(*errors.TencentCloudSDKError); ok {
		emit(map[string]interface{}{"ok": false, "code": sdkErr.GetCode(), "message": sdkErr.GetMessage(),
			"requestId": sdkErr.GetRequestId()})
		return
	}
	if err != nil {
		emit(map[string]interface{}{"ok": false, "code": nil, "message": err.Error(), "requestId": nil})
		return
	}
	var body struct {
		Response map[string]interface{} `json:"Response"`
	}
	if err := json.Unmarshal(response.GetBody(), &body); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	emit(map[string]interface{}{"ok": true, "response": body.Response})
}
