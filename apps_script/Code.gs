/**
 * Sends each Google Form response to the CRM intake endpoint, signed with HMAC-SHA256.
 *
 * Install: see README.md. Script Properties:
 *   CRM_INTAKE_URL  the URL of the intake_form function
 *   CRM_SECRET      the shared secret; the function reads the same value from CRM_SECRET_GOOGLE_FORMS
 *
 * Signature (scheme "crm_hmac"): X-CRM-Timestamp is unix seconds and
 * X-CRM-Signature is "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body bytes)).
 */

var PROPERTY_URL = 'CRM_INTAKE_URL';
var PROPERTY_SECRET = 'CRM_SECRET';
var HANDLER = 'onFormSubmit';
var MAX_RETRIES = 3;
var FIRST_BACKOFF_MS = 1000;

/**
 * Installable trigger handler: builds the payload from e.response and posts it.
 * An edited response is sent again with the same responseId and a later timestamp.
 */
function onFormSubmit(e) {
  var form = e && e.source ? e.source : FormApp.getActiveForm();
  var payload = buildPayload_(form, e.response);
  var status = postSigned_(JSON.stringify(payload));
  console.log(JSON.stringify({message: 'response sent', responseId: payload.responseId, status: status}));
}

/** Builds the "form_onFormSubmit" payload; checkbox answers stay arrays. */
function buildPayload_(form, response) {
  var items = response.getItemResponses().map(function (itemResponse) {
    var item = itemResponse.getItem();
    return {
      title: item.getTitle(),
      type: String(item.getType()),
      response: itemResponse.getResponse()
    };
  });
  return {
    source: 'form_onFormSubmit',
    formId: form.getId(),
    responseId: response.getId(),
    timestamp: response.getTimestamp().toISOString(),
    // Empty unless the form collects email addresses; Forms verifies this address.
    respondentEmail: response.getRespondentEmail() || '',
    items: items
  };
}

/**
 * Posts the body, retrying up to MAX_RETRIES times with exponential backoff on
 * 429, 5xx and network errors. Each attempt is signed again with a fresh
 * timestamp, so a late retry still falls inside the server's tolerance.
 * Returns the last HTTP status, or 0 when no attempt got an answer.
 */
function postSigned_(body) {
  var settings = readSettings_();
  var bodyBytes = Utilities.newBlob(body).getBytes();
  var status = 0;
  for (var attempt = 0; attempt <= MAX_RETRIES; attempt++) {
    if (attempt > 0) {
      Utilities.sleep(FIRST_BACKOFF_MS * Math.pow(2, attempt - 1));
    }
    status = fetchOnce_(settings, bodyBytes);
    if (status >= 200 && status < 300) {
      return status;
    }
    if (status !== 0 && status !== 429 && status < 500) {
      break;
    }
    console.warn(JSON.stringify({message: 'intake request failed, retrying', status: status, attempt: attempt + 1}));
  }
  console.error(JSON.stringify({message: 'intake request failed', status: status}));
  return status;
}

/** Sends one signed request; returns its HTTP status, or 0 on a network error. */
function fetchOnce_(settings, bodyBytes) {
  var timestamp = String(Math.floor(Date.now() / 1000));
  var options = {
    method: 'post',
    contentType: 'application/json',
    payload: bodyBytes,
    headers: {
      'X-CRM-Timestamp': timestamp,
      'X-CRM-Signature': sign_(settings.secret, timestamp, bodyBytes)
    },
    muteHttpExceptions: true
  };
  try {
    var response = UrlFetchApp.fetch(settings.url, options);
    var status = response.getResponseCode();
    if (status < 200 || status >= 300) {
      console.warn(JSON.stringify({message: 'intake answered non-2xx', status: status, body: response.getContentText().slice(0, 300)}));
    }
    return status;
  } catch (error) {
    console.warn(JSON.stringify({message: 'intake request raised', error: String(error)}));
    return 0;
  }
}

/** Returns "sha256=" + the hex HMAC-SHA256 of timestamp + "." + body bytes. */
function sign_(secret, timestamp, bodyBytes) {
  var message = Utilities.newBlob(timestamp + '.').getBytes().concat(bodyBytes);
  var digest = Utilities.computeHmacSha256Signature(message, Utilities.newBlob(secret).getBytes());
  // Apps Script bytes are signed (-128..127), so mask each one before writing it as hex.
  var hex = digest.map(function (value) {
    return ('0' + (value & 0xff).toString(16)).slice(-2);
  }).join('');
  return 'sha256=' + hex;
}

/** Reads the endpoint and the secret from Script Properties, or throws saying which is missing. */
function readSettings_() {
  var properties = PropertiesService.getScriptProperties();
  var url = properties.getProperty(PROPERTY_URL);
  var secret = properties.getProperty(PROPERTY_SECRET);
  var missing = [];
  if (!url) missing.push(PROPERTY_URL);
  if (!secret) missing.push(PROPERTY_SECRET);
  if (missing.length) {
    throw new Error('missing Script Properties ' + missing.join(', ') + ': set them in Project Settings > Script Properties');
  }
  return {url: url, secret: secret};
}

/**
 * Installs the form-submit trigger once. Run it by hand after setting the Script
 * Properties; running it again keeps one trigger and deletes any duplicates, so a
 * response is never sent twice by two triggers.
 */
function setup() {
  readSettings_();
  var form = FormApp.getActiveForm();
  var existing = ScriptApp.getProjectTriggers().filter(function (trigger) {
    return trigger.getHandlerFunction() === HANDLER && trigger.getEventType() === ScriptApp.EventType.ON_FORM_SUBMIT;
  });
  existing.slice(1).forEach(function (trigger) {
    ScriptApp.deleteTrigger(trigger);
  });
  if (existing.length > 0) {
    console.log('trigger already installed; removed ' + (existing.length - 1) + ' duplicate(s)');
    return;
  }
  ScriptApp.newTrigger(HANDLER).forForm(form).onFormSubmit().create();
  console.log('trigger installed for form ' + form.getId());
}

/** Sends the form's most recent response again, to test the installation. */
function resendLatestResponse() {
  var form = FormApp.getActiveForm();
  var responses = form.getResponses();
  if (!responses.length) {
    throw new Error('the form has no responses yet: submit one first');
  }
  onFormSubmit({source: form, response: responses[responses.length - 1]});
}
