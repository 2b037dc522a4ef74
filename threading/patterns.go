package threading

import "strings"

// Language tables for reply extraction. All entries are lower case and
// compared against lower-cased, trimmed lines.

// separatorTexts are the words inside "-----Original Message-----" style
// separators.
var separatorTexts = []string{
	"original message", "original-nachricht", "original nachricht", "ursprüngliche nachricht",
	"message d'origine", "message d’origine", "message original", "mensaje original",
	"messaggio originale", "oorspronkelijk bericht", "origineel bericht", "mensagem original",
	"ursprungligt meddelande", "originalmeddelande", "wiadomość oryginalna",
	"oryginalna wiadomość", "元のメッセージ", "原始邮件", "原始郵件", "原邮件", "reply message",
	"alkuperäinen viesti", "oprindelig meddelelse", "opprinnelig melding", "исходное сообщение",
}

// forwardTexts mark the start of forwarded content, which is kept.
var forwardTexts = []string{
	"forwarded message", "begin forwarded message", "weitergeleitete nachricht",
	"anfang der weitergeleiteten nachricht", "message transféré", "début du message réexpédié",
	"début du message transféré", "mensaje reenviado", "inicio del mensaje reenviado",
	"messaggio inoltrato", "inizio messaggio inoltrato", "doorgestuurd bericht",
	"begin doorgestuurd bericht", "mensagem encaminhada", "início da mensagem reencaminhada",
	"mensagem reencaminhada", "vidarebefordrat meddelande", "vidarebefordrat mejl",
	"przekazana wiadomość", "wiadomość przekazana", "początek przekazanej wiadomości",
	"転送されたメッセージ", "转发的邮件", "以下是转发的邮件", "轉寄的郵件", "forwarded message follows",
}

// Header-block field names (Outlook "From: ... Sent: ... To: ... Subject:").
var (
	hdrFrom = []string{"from", "von", "de", "da", "van", "från", "fra", "od", "差出人", "发件人",
		"寄件者", "送信者", "lähettäjä", "feladó", "от"}
	hdrDate = []string{"sent", "date", "gesendet", "datum", "envoyé", "enviado", "enviado el",
		"enviada em", "enviado em", "fecha", "inviato", "data", "verzonden", "skickat", "wysłano",
		"wysłane", "送信日時", "日付", "发送时间", "發送時間", "日期", "時間", "sendt", "lähetetty", "отправлено"}
	hdrTo = []string{"to", "an", "à", "a", "para", "aan", "till", "til", "do", "宛先", "收件人",
		"收件者", "vastaanottaja", "кому"}
	hdrSubject = []string{"subject", "betreff", "objet", "asunto", "oggetto", "onderwerp", "ämne",
		"emne", "temat", "件名", "主题", "主旨", "assunto", "aihe", "тема"}
	hdrCc = []string{"cc", "kopie", "copie", "copia", "kopia", "dw", "抄送", "副本", "bcc"}
)

// attribVerbs end "On <date>, <name> wrote:" lines.
var attribVerbs = []string{
	"wrote", "writes", "schrieb", "schreef", "a écrit", "escribió", "escribio", "ha scritto",
	"escreveu", "skrev", "napisał", "napisała", "napisal", "pisze", "写道", "寫道",
	"のメッセージ", "のメール", "書きました", "kirjoitti", "írta", "yazdı", "написал",
}

// attribOpeners start attribution lines.
var attribOpeners = []string{
	"on ", "am ", "le ", "el ", "il ", "op ", "em ", "den ", "w dniu", "在", "dnia ", "the ",
	"quoting ", "zitat von ",
}

// mobileSignatures start the short lines mobile clients append.
var mobileSignatures = []string{
	"sent from my ", "sent from outlook", "get outlook for ", "sent from mail for windows",
	"sent from yahoo mail", "sent from samsung", "sent via ", "sent with proton mail",
	"sent from proton mail", "sent from the all new aol", "von meinem ", "gesendet von meinem",
	"gesendet mit ", "gesendet von outlook", "envoyé de mon ", "envoyé depuis mon ",
	"envoyé à partir de ", "obtenir outlook pour", "enviado desde mi ", "enviado de mi ",
	"obtener outlook para", "inviato da ", "scarica outlook per", "verzonden vanaf mijn ",
	"verzonden met ", "outlook voor ", "enviado do meu ", "enviado a partir do meu ",
	"obter o outlook para", "skickat från min ", "skickat från ", "hämta outlook för",
	"wysłane z mojego ", "wysłano z ", "pobierz outlook dla", "iphoneから送信", "androidから送信",
	"ipadから送信", "发自我的", "從我的 iphone 傳送", "从我的", "發自我的",
}

func hasAnyPrefix(s string, list []string) bool {
	for _, p := range list {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
