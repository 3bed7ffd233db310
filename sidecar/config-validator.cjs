// Generated from sidecar/config-schema.ts by scripts/config-validators.ts (npm run validators): do not edit.
"use strict";
module.exports = validate10;
module.exports.default = validate10;
const schema11 = {"type":"object","additionalProperties":false,"required":["trustDomain","ca"],"properties":{"trustDomain":{"type":"string","minLength":1,"description":"the trust domain of this workload, e.g. example.org"},"ca":{"type":"object","additionalProperties":false,"required":["address"],"properties":{"address":{"type":"string","minLength":1,"description":"the CA's gRPC address as HOST:PORT, e.g. tollgate-ca.tollgate-system.svc:8443"},"spiffeId":{"type":"string","minLength":1,"description":"the CA's SPIFFE ID, e.g. spiffe://example.org/tollgate/ca"},"bundleFile":{"type":"string","minLength":1,"description":"a PEM file with the CA's roots, e.g. the bundle.pem written by `tollgate ca init`"},"bundlePem":{"type":"string","minLength":1,"description":"the CA's roots as PEM text (the content of bundle.pem)"}},"description":"a \"ca\" section with address (HOST:PORT) and bundleFile (or bundlePem)"},"attestation":{"type":"object","additionalProperties":false,"required":[],"properties":{"tokenFile":{"type":"string","minLength":1,"description":"the projected service-account token file"},"joinToken":{"type":"string","minLength":1,"description":"a join token from `tollgate ca token create`"},"joinTokenFile":{"type":"string","minLength":1,"description":"a file holding a join token"}}},"svid":{"type":"object","additionalProperties":false,"required":[],"properties":{"ttl":{"type":["string","number"],"description":"a duration such as 1h"},"skewTolerance":{"type":["string","number"],"description":"a duration such as 5m"}}},"inbound":{"type":"array","items":{"type":"object","additionalProperties":false,"required":["listen","appPort"],"properties":{"listen":{"type":"string","minLength":1,"description":"the mTLS address as HOST:PORT, e.g. 0.0.0.0:15006"},"appPort":{"type":"integer","minimum":1,"maximum":65535,"description":"the app's port, e.g. 8080"},"appHost":{"type":"string","minLength":1,"description":"the app's host, e.g. 127.0.0.1"},"proxyProtocol":{"type":"boolean","description":"true or false"},"allowNonLoopbackApp":{"type":"boolean","description":"true or false"}}}},"outbound":{"type":"array","items":{"type":"object","additionalProperties":false,"required":["listen","upstream","spiffeId"],"properties":{"listen":{"type":"string","minLength":1,"description":"the local plaintext address as HOST:PORT on loopback, e.g. 127.0.0.1:15001"},"upstream":{"type":"string","minLength":1,"description":"the upstream sidecar's inbound address as HOST:PORT, e.g. orders.shop.svc:15006"},"spiffeId":{"type":"string","minLength":1,"description":"the SPIFFE ID the upstream must present, e.g. spiffe://example.org/ns/shop/sa/orders"}}}},"policy":{"type":"object","additionalProperties":false,"required":[],"properties":{"file":{"type":"string","minLength":1,"description":"the policy file, e.g. ./policy.yaml"}}},"tls":{"type":"object","additionalProperties":false,"required":[],"properties":{"minVersion":{"type":"string","enum":["TLSv1.3","TLSv1.2"],"description":"TLSv1.3 or TLSv1.2"}}},"limits":{"type":"object","additionalProperties":false,"required":[],"properties":{"maxConnections":{"type":"integer","minimum":1,"maximum":10000000,"description":"a number of connections"},"maxHandshakes":{"type":"integer","minimum":1,"maximum":10000000,"description":"a number of connections"},"maxHandshakesPerSource":{"type":"integer","minimum":1,"maximum":10000000,"description":"a number of connections"},"handshakeTimeout":{"type":["string","number"],"description":"a duration such as 10s"},"idleTimeout":{"type":["string","number"],"description":"a duration such as 1h"},"maxConnectionAge":{"type":["string","number"],"description":"a duration such as 24h"},"drainTimeout":{"type":["string","number"],"description":"a duration such as 20s"}}},"admin":{"type":"object","additionalProperties":false,"required":[],"properties":{"listen":{"type":"string","minLength":1,"description":"the admin address as HOST:PORT, e.g. 127.0.0.1:15020"}}},"log":{"type":"object","additionalProperties":false,"required":[],"properties":{"level":{"type":"string","enum":["debug","info","warn","error"],"description":"debug, info, warn or error"}}},"capture":{"type":"string","enum":["iptables","none"],"description":"iptables or none"}}};
const func2 = Object.prototype.hasOwnProperty;
const func3 = require("ajv/dist/runtime/ucs2length").default;

function validate10(data, {instancePath="", parentData, parentDataProperty, rootData=data}={}){
let vErrors = null;
let errors = 0;
if(data && typeof data == "object" && !Array.isArray(data)){
if(data.trustDomain === undefined){
const err0 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "trustDomain"},message:"must have required property '"+"trustDomain"+"'",schema:schema11.required,parentSchema:schema11,data};
if(vErrors === null){
vErrors = [err0];
}
else {
vErrors.push(err0);
}
errors++;
}
if(data.ca === undefined){
const err1 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "ca"},message:"must have required property '"+"ca"+"'",schema:schema11.required,parentSchema:schema11,data};
if(vErrors === null){
vErrors = [err1];
}
else {
vErrors.push(err1);
}
errors++;
}
for(const key0 in data){
if(!(func2.call(schema11.properties, key0))){
const err2 = {instancePath,schemaPath:"#/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key0},message:"must NOT have additional properties",schema:false,parentSchema:schema11,data};
if(vErrors === null){
vErrors = [err2];
}
else {
vErrors.push(err2);
}
errors++;
}
}
if(data.trustDomain !== undefined){
let data0 = data.trustDomain;
if(typeof data0 === "string"){
if(func3(data0) < 1){
const err3 = {instancePath:instancePath+"/trustDomain",schemaPath:"#/properties/trustDomain/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.trustDomain,data:data0};
if(vErrors === null){
vErrors = [err3];
}
else {
vErrors.push(err3);
}
errors++;
}
}
else {
const err4 = {instancePath:instancePath+"/trustDomain",schemaPath:"#/properties/trustDomain/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.trustDomain.type,parentSchema:schema11.properties.trustDomain,data:data0};
if(vErrors === null){
vErrors = [err4];
}
else {
vErrors.push(err4);
}
errors++;
}
}
if(data.ca !== undefined){
let data1 = data.ca;
if(data1 && typeof data1 == "object" && !Array.isArray(data1)){
if(data1.address === undefined){
const err5 = {instancePath:instancePath+"/ca",schemaPath:"#/properties/ca/required",keyword:"required",params:{missingProperty: "address"},message:"must have required property '"+"address"+"'",schema:schema11.properties.ca.required,parentSchema:schema11.properties.ca,data:data1};
if(vErrors === null){
vErrors = [err5];
}
else {
vErrors.push(err5);
}
errors++;
}
for(const key1 in data1){
if(!((((key1 === "address") || (key1 === "spiffeId")) || (key1 === "bundleFile")) || (key1 === "bundlePem"))){
const err6 = {instancePath:instancePath+"/ca",schemaPath:"#/properties/ca/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key1},message:"must NOT have additional properties",schema:false,parentSchema:schema11.properties.ca,data:data1};
if(vErrors === null){
vErrors = [err6];
}
else {
vErrors.push(err6);
}
errors++;
}
}
if(data1.address !== undefined){
let data2 = data1.address;
if(typeof data2 === "string"){
if(func3(data2) < 1){
const err7 = {instancePath:instancePath+"/ca/address",schemaPath:"#/properties/ca/properties/address/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.ca.properties.address,data:data2};
if(vErrors === null){
vErrors = [err7];
}
else {
vErrors.push(err7);
}
errors++;
}
}
else {
const err8 = {instancePath:instancePath+"/ca/address",schemaPath:"#/properties/ca/properties/address/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.ca.properties.address.type,parentSchema:schema11.properties.ca.properties.address,data:data2};
if(vErrors === null){
vErrors = [err8];
}
else {
vErrors.push(err8);
}
errors++;
}
}
if(data1.spiffeId !== undefined){
let data3 = data1.spiffeId;
if(typeof data3 === "string"){
if(func3(data3) < 1){
const err9 = {instancePath:instancePath+"/ca/spiffeId",schemaPath:"#/properties/ca/properties/spiffeId/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.ca.properties.spiffeId,data:data3};
if(vErrors === null){
vErrors = [err9];
}
else {
vErrors.push(err9);
}
errors++;
}
}
else {
const err10 = {instancePath:instancePath+"/ca/spiffeId",schemaPath:"#/properties/ca/properties/spiffeId/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.ca.properties.spiffeId.type,parentSchema:schema11.properties.ca.properties.spiffeId,data:data3};
if(vErrors === null){
vErrors = [err10];
}
else {
vErrors.push(err10);
}
errors++;
}
}
if(data1.bundleFile !== undefined){
let data4 = data1.bundleFile;
if(typeof data4 === "string"){
if(func3(data4) < 1){
const err11 = {instancePath:instancePath+"/ca/bundleFile",schemaPath:"#/properties/ca/properties/bundleFile/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.ca.properties.bundleFile,data:data4};
if(vErrors === null){
vErrors = [err11];
}
else {
vErrors.push(err11);
}
errors++;
}
}
else {
const err12 = {instancePath:instancePath+"/ca/bundleFile",schemaPath:"#/properties/ca/properties/bundleFile/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.ca.properties.bundleFile.type,parentSchema:schema11.properties.ca.properties.bundleFile,data:data4};
if(vErrors === null){
vErrors = [err12];
}
else {
vErrors.push(err12);
}
errors++;
}
}
if(data1.bundlePem !== undefined){
let data5 = data1.bundlePem;
if(typeof data5 === "string"){
if(func3(data5) < 1){
const err13 = {instancePath:instancePath+"/ca/bundlePem",schemaPath:"#/properties/ca/properties/bundlePem/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.ca.properties.bundlePem,data:data5};
if(vErrors === null){
vErrors = [err13];
}
else {
vErrors.push(err13);
}
errors++;
}
}
else {
const err14 = {instancePath:instancePath+"/ca/bundlePem",schemaPath:"#/properties/ca/properties/bundlePem/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.ca.properties.bundlePem.type,parentSchema:schema11.properties.ca.properties.bundlePem,data:data5};
if(vErrors === null){
vErrors = [err14];
}
else {
vErrors.push(err14);
}
errors++;
}
}
}
else {
const err15 = {instancePath:instancePath+"/ca",schemaPath:"#/properties/ca/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.ca.type,parentSchema:schema11.properties.ca,data:data1};
if(vErrors === null){
vErrors = [err15];
}
else {
vErrors.push(err15);
}
errors++;
}
}
if(data.attestation !== undefined){
let data6 = data.attestation;
if(data6 && typeof data6 == "object" && !Array.isArray(data6)){
for(const key2 in data6){
if(!(((key2 === "tokenFile") || (key2 === "joinToken")) || (key2 === "joinTokenFile"))){
const err16 = {instancePath:instancePath+"/attestation",schemaPath:"#/properties/attestation/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key2},message:"must NOT have additional properties",schema:false,parentSchema:schema11.properties.attestation,data:data6};
if(vErrors === null){
vErrors = [err16];
}
else {
vErrors.push(err16);
}
errors++;
}
}
if(data6.tokenFile !== undefined){
let data7 = data6.tokenFile;
if(typeof data7 === "string"){
if(func3(data7) < 1){
const err17 = {instancePath:instancePath+"/attestation/tokenFile",schemaPath:"#/properties/attestation/properties/tokenFile/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.attestation.properties.tokenFile,data:data7};
if(vErrors === null){
vErrors = [err17];
}
else {
vErrors.push(err17);
}
errors++;
}
}
else {
const err18 = {instancePath:instancePath+"/attestation/tokenFile",schemaPath:"#/properties/attestation/properties/tokenFile/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.attestation.properties.tokenFile.type,parentSchema:schema11.properties.attestation.properties.tokenFile,data:data7};
if(vErrors === null){
vErrors = [err18];
}
else {
vErrors.push(err18);
}
errors++;
}
}
if(data6.joinToken !== undefined){
let data8 = data6.joinToken;
if(typeof data8 === "string"){
if(func3(data8) < 1){
const err19 = {instancePath:instancePath+"/attestation/joinToken",schemaPath:"#/properties/attestation/properties/joinToken/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.attestation.properties.joinToken,data:data8};
if(vErrors === null){
vErrors = [err19];
}
else {
vErrors.push(err19);
}
errors++;
}
}
else {
const err20 = {instancePath:instancePath+"/attestation/joinToken",schemaPath:"#/properties/attestation/properties/joinToken/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.attestation.properties.joinToken.type,parentSchema:schema11.properties.attestation.properties.joinToken,data:data8};
if(vErrors === null){
vErrors = [err20];
}
else {
vErrors.push(err20);
}
errors++;
}
}
if(data6.joinTokenFile !== undefined){
let data9 = data6.joinTokenFile;
if(typeof data9 === "string"){
if(func3(data9) < 1){
const err21 = {instancePath:instancePath+"/attestation/joinTokenFile",schemaPath:"#/properties/attestation/properties/joinTokenFile/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.attestation.properties.joinTokenFile,data:data9};
if(vErrors === null){
vErrors = [err21];
}
else {
vErrors.push(err21);
}
errors++;
}
}
else {
const err22 = {instancePath:instancePath+"/attestation/joinTokenFile",schemaPath:"#/properties/attestation/properties/joinTokenFile/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.attestation.properties.joinTokenFile.type,parentSchema:schema11.properties.attestation.properties.joinTokenFile,data:data9};
if(vErrors === null){
vErrors = [err22];
}
else {
vErrors.push(err22);
}
errors++;
}
}
}
else {
const err23 = {instancePath:instancePath+"/attestation",schemaPath:"#/properties/attestation/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.attestation.type,parentSchema:schema11.properties.attestation,data:data6};
if(vErrors === null){
vErrors = [err23];
}
else {
vErrors.push(err23);
}
errors++;
}
}
if(data.svid !== undefined){
let data10 = data.svid;
if(data10 && typeof data10 == "object" && !Array.isArray(data10)){
for(const key3 in data10){
if(!((key3 === "ttl") || (key3 === "skewTolerance"))){
const err24 = {instancePath:instancePath+"/svid",schemaPath:"#/properties/svid/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key3},message:"must NOT have additional properties",schema:false,parentSchema:schema11.properties.svid,data:data10};
if(vErrors === null){
vErrors = [err24];
}
else {
vErrors.push(err24);
}
errors++;
}
}
if(data10.ttl !== undefined){
let data11 = data10.ttl;
if((typeof data11 !== "string") && (!((typeof data11 == "number") && (isFinite(data11))))){
const err25 = {instancePath:instancePath+"/svid/ttl",schemaPath:"#/properties/svid/properties/ttl/type",keyword:"type",params:{type: schema11.properties.svid.properties.ttl.type},message:"must be string,number",schema:schema11.properties.svid.properties.ttl.type,parentSchema:schema11.properties.svid.properties.ttl,data:data11};
if(vErrors === null){
vErrors = [err25];
}
else {
vErrors.push(err25);
}
errors++;
}
}
if(data10.skewTolerance !== undefined){
let data12 = data10.skewTolerance;
if((typeof data12 !== "string") && (!((typeof data12 == "number") && (isFinite(data12))))){
const err26 = {instancePath:instancePath+"/svid/skewTolerance",schemaPath:"#/properties/svid/properties/skewTolerance/type",keyword:"type",params:{type: schema11.properties.svid.properties.skewTolerance.type},message:"must be string,number",schema:schema11.properties.svid.properties.skewTolerance.type,parentSchema:schema11.properties.svid.properties.skewTolerance,data:data12};
if(vErrors === null){
vErrors = [err26];
}
else {
vErrors.push(err26);
}
errors++;
}
}
}
else {
const err27 = {instancePath:instancePath+"/svid",schemaPath:"#/properties/svid/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.svid.type,parentSchema:schema11.properties.svid,data:data10};
if(vErrors === null){
vErrors = [err27];
}
else {
vErrors.push(err27);
}
errors++;
}
}
if(data.inbound !== undefined){
let data13 = data.inbound;
if(Array.isArray(data13)){
const len0 = data13.length;
for(let i0=0; i0<len0; i0++){
let data14 = data13[i0];
if(data14 && typeof data14 == "object" && !Array.isArray(data14)){
if(data14.listen === undefined){
const err28 = {instancePath:instancePath+"/inbound/" + i0,schemaPath:"#/properties/inbound/items/required",keyword:"required",params:{missingProperty: "listen"},message:"must have required property '"+"listen"+"'",schema:schema11.properties.inbound.items.required,parentSchema:schema11.properties.inbound.items,data:data14};
if(vErrors === null){
vErrors = [err28];
}
else {
vErrors.push(err28);
}
errors++;
}
if(data14.appPort === undefined){
const err29 = {instancePath:instancePath+"/inbound/" + i0,schemaPath:"#/properties/inbound/items/required",keyword:"required",params:{missingProperty: "appPort"},message:"must have required property '"+"appPort"+"'",schema:schema11.properties.inbound.items.required,parentSchema:schema11.properties.inbound.items,data:data14};
if(vErrors === null){
vErrors = [err29];
}
else {
vErrors.push(err29);
}
errors++;
}
for(const key4 in data14){
if(!(((((key4 === "listen") || (key4 === "appPort")) || (key4 === "appHost")) || (key4 === "proxyProtocol")) || (key4 === "allowNonLoopbackApp"))){
const err30 = {instancePath:instancePath+"/inbound/" + i0,schemaPath:"#/properties/inbound/items/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key4},message:"must NOT have additional properties",schema:false,parentSchema:schema11.properties.inbound.items,data:data14};
if(vErrors === null){
vErrors = [err30];
}
else {
vErrors.push(err30);
}
errors++;
}
}
if(data14.listen !== undefined){
let data15 = data14.listen;
if(typeof data15 === "string"){
if(func3(data15) < 1){
const err31 = {instancePath:instancePath+"/inbound/" + i0+"/listen",schemaPath:"#/properties/inbound/items/properties/listen/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.inbound.items.properties.listen,data:data15};
if(vErrors === null){
vErrors = [err31];
}
else {
vErrors.push(err31);
}
errors++;
}
}
else {
const err32 = {instancePath:instancePath+"/inbound/" + i0+"/listen",schemaPath:"#/properties/inbound/items/properties/listen/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.inbound.items.properties.listen.type,parentSchema:schema11.properties.inbound.items.properties.listen,data:data15};
if(vErrors === null){
vErrors = [err32];
}
else {
vErrors.push(err32);
}
errors++;
}
}
if(data14.appPort !== undefined){
let data16 = data14.appPort;
if(!(((typeof data16 == "number") && (!(data16 % 1) && !isNaN(data16))) && (isFinite(data16)))){
const err33 = {instancePath:instancePath+"/inbound/" + i0+"/appPort",schemaPath:"#/properties/inbound/items/properties/appPort/type",keyword:"type",params:{type: "integer"},message:"must be integer",schema:schema11.properties.inbound.items.properties.appPort.type,parentSchema:schema11.properties.inbound.items.properties.appPort,data:data16};
if(vErrors === null){
vErrors = [err33];
}
else {
vErrors.push(err33);
}
errors++;
}
if((typeof data16 == "number") && (isFinite(data16))){
if(data16 > 65535 || isNaN(data16)){
const err34 = {instancePath:instancePath+"/inbound/" + i0+"/appPort",schemaPath:"#/properties/inbound/items/properties/appPort/maximum",keyword:"maximum",params:{comparison: "<=", limit: 65535},message:"must be <= 65535",schema:65535,parentSchema:schema11.properties.inbound.items.properties.appPort,data:data16};
if(vErrors === null){
vErrors = [err34];
}
else {
vErrors.push(err34);
}
errors++;
}
if(data16 < 1 || isNaN(data16)){
const err35 = {instancePath:instancePath+"/inbound/" + i0+"/appPort",schemaPath:"#/properties/inbound/items/properties/appPort/minimum",keyword:"minimum",params:{comparison: ">=", limit: 1},message:"must be >= 1",schema:1,parentSchema:schema11.properties.inbound.items.properties.appPort,data:data16};
if(vErrors === null){
vErrors = [err35];
}
else {
vErrors.push(err35);
}
errors++;
}
}
}
if(data14.appHost !== undefined){
let data17 = data14.appHost;
if(typeof data17 === "string"){
if(func3(data17) < 1){
const err36 = {instancePath:instancePath+"/inbound/" + i0+"/appHost",schemaPath:"#/properties/inbound/items/properties/appHost/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.inbound.items.properties.appHost,data:data17};
if(vErrors === null){
vErrors = [err36];
}
else {
vErrors.push(err36);
}
errors++;
}
}
else {
const err37 = {instancePath:instancePath+"/inbound/" + i0+"/appHost",schemaPath:"#/properties/inbound/items/properties/appHost/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.inbound.items.properties.appHost.type,parentSchema:schema11.properties.inbound.items.properties.appHost,data:data17};
if(vErrors === null){
vErrors = [err37];
}
else {
vErrors.push(err37);
}
errors++;
}
}
if(data14.proxyProtocol !== undefined){
let data18 = data14.proxyProtocol;
if(typeof data18 !== "boolean"){
const err38 = {instancePath:instancePath+"/inbound/" + i0+"/proxyProtocol",schemaPath:"#/properties/inbound/items/properties/proxyProtocol/type",keyword:"type",params:{type: "boolean"},message:"must be boolean",schema:schema11.properties.inbound.items.properties.proxyProtocol.type,parentSchema:schema11.properties.inbound.items.properties.proxyProtocol,data:data18};
if(vErrors === null){
vErrors = [err38];
}
else {
vErrors.push(err38);
}
errors++;
}
}
if(data14.allowNonLoopbackApp !== undefined){
let data19 = data14.allowNonLoopbackApp;
if(typeof data19 !== "boolean"){
const err39 = {instancePath:instancePath+"/inbound/" + i0+"/allowNonLoopbackApp",schemaPath:"#/properties/inbound/items/properties/allowNonLoopbackApp/type",keyword:"type",params:{type: "boolean"},message:"must be boolean",schema:schema11.properties.inbound.items.properties.allowNonLoopbackApp.type,parentSchema:schema11.properties.inbound.items.properties.allowNonLoopbackApp,data:data19};
if(vErrors === null){
vErrors = [err39];
}
else {
vErrors.push(err39);
}
errors++;
}
}
}
else {
const err40 = {instancePath:instancePath+"/inbound/" + i0,schemaPath:"#/properties/inbound/items/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.inbound.items.type,parentSchema:schema11.properties.inbound.items,data:data14};
if(vErrors === null){
vErrors = [err40];
}
else {
vErrors.push(err40);
}
errors++;
}
}
}
else {
const err41 = {instancePath:instancePath+"/inbound",schemaPath:"#/properties/inbound/type",keyword:"type",params:{type: "array"},message:"must be array",schema:schema11.properties.inbound.type,parentSchema:schema11.properties.inbound,data:data13};
if(vErrors === null){
vErrors = [err41];
}
else {
vErrors.push(err41);
}
errors++;
}
}
if(data.outbound !== undefined){
let data20 = data.outbound;
if(Array.isArray(data20)){
const len1 = data20.length;
for(let i1=0; i1<len1; i1++){
let data21 = data20[i1];
if(data21 && typeof data21 == "object" && !Array.isArray(data21)){
if(data21.listen === undefined){
const err42 = {instancePath:instancePath+"/outbound/" + i1,schemaPath:"#/properties/outbound/items/required",keyword:"required",params:{missingProperty: "listen"},message:"must have required property '"+"listen"+"'",schema:schema11.properties.outbound.items.required,parentSchema:schema11.properties.outbound.items,data:data21};
if(vErrors === null){
vErrors = [err42];
}
else {
vErrors.push(err42);
}
errors++;
}
if(data21.upstream === undefined){
const err43 = {instancePath:instancePath+"/outbound/" + i1,schemaPath:"#/properties/outbound/items/required",keyword:"required",params:{missingProperty: "upstream"},message:"must have required property '"+"upstream"+"'",schema:schema11.properties.outbound.items.required,parentSchema:schema11.properties.outbound.items,data:data21};
if(vErrors === null){
vErrors = [err43];
}
else {
vErrors.push(err43);
}
errors++;
}
if(data21.spiffeId === undefined){
const err44 = {instancePath:instancePath+"/outbound/" + i1,schemaPath:"#/properties/outbound/items/required",keyword:"required",params:{missingProperty: "spiffeId"},message:"must have required property '"+"spiffeId"+"'",schema:schema11.properties.outbound.items.required,parentSchema:schema11.properties.outbound.items,data:data21};
if(vErrors === null){
vErrors = [err44];
}
else {
vErrors.push(err44);
}
errors++;
}
for(const key5 in data21){
if(!(((key5 === "listen") || (key5 === "upstream")) || (key5 === "spiffeId"))){
const err45 = {instancePath:instancePath+"/outbound/" + i1,schemaPath:"#/properties/outbound/items/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key5},message:"must NOT have additional properties",schema:false,parentSchema:schema11.properties.outbound.items,data:data21};
if(vErrors === null){
vErrors = [err45];
}
else {
vErrors.push(err45);
}
errors++;
}
}
if(data21.listen !== undefined){
let data22 = data21.listen;
if(typeof data22 === "string"){
if(func3(data22) < 1){
const err46 = {instancePath:instancePath+"/outbound/" + i1+"/listen",schemaPath:"#/properties/outbound/items/properties/listen/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.outbound.items.properties.listen,data:data22};
if(vErrors === null){
vErrors = [err46];
}
else {
vErrors.push(err46);
}
errors++;
}
}
else {
const err47 = {instancePath:instancePath+"/outbound/" + i1+"/listen",schemaPath:"#/properties/outbound/items/properties/listen/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.outbound.items.properties.listen.type,parentSchema:schema11.properties.outbound.items.properties.listen,data:data22};
if(vErrors === null){
vErrors = [err47];
}
else {
vErrors.push(err47);
}
errors++;
}
}
if(data21.upstream !== undefined){
let data23 = data21.upstream;
if(typeof data23 === "string"){
if(func3(data23) < 1){
const err48 = {instancePath:instancePath+"/outbound/" + i1+"/upstream",schemaPath:"#/properties/outbound/items/properties/upstream/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.outbound.items.properties.upstream,data:data23};
if(vErrors === null){
vErrors = [err48];
}
else {
vErrors.push(err48);
}
errors++;
}
}
else {
const err49 = {instancePath:instancePath+"/outbound/" + i1+"/upstream",schemaPath:"#/properties/outbound/items/properties/upstream/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.outbound.items.properties.upstream.type,parentSchema:schema11.properties.outbound.items.properties.upstream,data:data23};
if(vErrors === null){
vErrors = [err49];
}
else {
vErrors.push(err49);
}
errors++;
}
}
if(data21.spiffeId !== undefined){
let data24 = data21.spiffeId;
if(typeof data24 === "string"){
if(func3(data24) < 1){
const err50 = {instancePath:instancePath+"/outbound/" + i1+"/spiffeId",schemaPath:"#/properties/outbound/items/properties/spiffeId/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.outbound.items.properties.spiffeId,data:data24};
if(vErrors === null){
vErrors = [err50];
}
else {
vErrors.push(err50);
}
errors++;
}
}
else {
const err51 = {instancePath:instancePath+"/outbound/" + i1+"/spiffeId",schemaPath:"#/properties/outbound/items/properties/spiffeId/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.outbound.items.properties.spiffeId.type,parentSchema:schema11.properties.outbound.items.properties.spiffeId,data:data24};
if(vErrors === null){
vErrors = [err51];
}
else {
vErrors.push(err51);
}
errors++;
}
}
}
else {
const err52 = {instancePath:instancePath+"/outbound/" + i1,schemaPath:"#/properties/outbound/items/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.outbound.items.type,parentSchema:schema11.properties.outbound.items,data:data21};
if(vErrors === null){
vErrors = [err52];
}
else {
vErrors.push(err52);
}
errors++;
}
}
}
else {
const err53 = {instancePath:instancePath+"/outbound",schemaPath:"#/properties/outbound/type",keyword:"type",params:{type: "array"},message:"must be array",schema:schema11.properties.outbound.type,parentSchema:schema11.properties.outbound,data:data20};
if(vErrors === null){
vErrors = [err53];
}
else {
vErrors.push(err53);
}
errors++;
}
}
if(data.policy !== undefined){
let data25 = data.policy;
if(data25 && typeof data25 == "object" && !Array.isArray(data25)){
for(const key6 in data25){
if(!(key6 === "file")){
const err54 = {instancePath:instancePath+"/policy",schemaPath:"#/properties/policy/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key6},message:"must NOT have additional properties",schema:false,parentSchema:schema11.properties.policy,data:data25};
if(vErrors === null){
vErrors = [err54];
}
else {
vErrors.push(err54);
}
errors++;
}
}
if(data25.file !== undefined){
let data26 = data25.file;
if(typeof data26 === "string"){
if(func3(data26) < 1){
const err55 = {instancePath:instancePath+"/policy/file",schemaPath:"#/properties/policy/properties/file/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.policy.properties.file,data:data26};
if(vErrors === null){
vErrors = [err55];
}
else {
vErrors.push(err55);
}
errors++;
}
}
else {
const err56 = {instancePath:instancePath+"/policy/file",schemaPath:"#/properties/policy/properties/file/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.policy.properties.file.type,parentSchema:schema11.properties.policy.properties.file,data:data26};
if(vErrors === null){
vErrors = [err56];
}
else {
vErrors.push(err56);
}
errors++;
}
}
}
else {
const err57 = {instancePath:instancePath+"/policy",schemaPath:"#/properties/policy/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.policy.type,parentSchema:schema11.properties.policy,data:data25};
if(vErrors === null){
vErrors = [err57];
}
else {
vErrors.push(err57);
}
errors++;
}
}
if(data.tls !== undefined){
let data27 = data.tls;
if(data27 && typeof data27 == "object" && !Array.isArray(data27)){
for(const key7 in data27){
if(!(key7 === "minVersion")){
const err58 = {instancePath:instancePath+"/tls",schemaPath:"#/properties/tls/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key7},message:"must NOT have additional properties",schema:false,parentSchema:schema11.properties.tls,data:data27};
if(vErrors === null){
vErrors = [err58];
}
else {
vErrors.push(err58);
}
errors++;
}
}
if(data27.minVersion !== undefined){
let data28 = data27.minVersion;
if(typeof data28 !== "string"){
const err59 = {instancePath:instancePath+"/tls/minVersion",schemaPath:"#/properties/tls/properties/minVersion/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.tls.properties.minVersion.type,parentSchema:schema11.properties.tls.properties.minVersion,data:data28};
if(vErrors === null){
vErrors = [err59];
}
else {
vErrors.push(err59);
}
errors++;
}
if(!((data28 === "TLSv1.3") || (data28 === "TLSv1.2"))){
const err60 = {instancePath:instancePath+"/tls/minVersion",schemaPath:"#/properties/tls/properties/minVersion/enum",keyword:"enum",params:{allowedValues: schema11.properties.tls.properties.minVersion.enum},message:"must be equal to one of the allowed values",schema:schema11.properties.tls.properties.minVersion.enum,parentSchema:schema11.properties.tls.properties.minVersion,data:data28};
if(vErrors === null){
vErrors = [err60];
}
else {
vErrors.push(err60);
}
errors++;
}
}
}
else {
const err61 = {instancePath:instancePath+"/tls",schemaPath:"#/properties/tls/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.tls.type,parentSchema:schema11.properties.tls,data:data27};
if(vErrors === null){
vErrors = [err61];
}
else {
vErrors.push(err61);
}
errors++;
}
}
if(data.limits !== undefined){
let data29 = data.limits;
if(data29 && typeof data29 == "object" && !Array.isArray(data29)){
for(const key8 in data29){
if(!(((((((key8 === "maxConnections") || (key8 === "maxHandshakes")) || (key8 === "maxHandshakesPerSource")) || (key8 === "handshakeTimeout")) || (key8 === "idleTimeout")) || (key8 === "maxConnectionAge")) || (key8 === "drainTimeout"))){
const err62 = {instancePath:instancePath+"/limits",schemaPath:"#/properties/limits/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key8},message:"must NOT have additional properties",schema:false,parentSchema:schema11.properties.limits,data:data29};
if(vErrors === null){
vErrors = [err62];
}
else {
vErrors.push(err62);
}
errors++;
}
}
if(data29.maxConnections !== undefined){
let data30 = data29.maxConnections;
if(!(((typeof data30 == "number") && (!(data30 % 1) && !isNaN(data30))) && (isFinite(data30)))){
const err63 = {instancePath:instancePath+"/limits/maxConnections",schemaPath:"#/properties/limits/properties/maxConnections/type",keyword:"type",params:{type: "integer"},message:"must be integer",schema:schema11.properties.limits.properties.maxConnections.type,parentSchema:schema11.properties.limits.properties.maxConnections,data:data30};
if(vErrors === null){
vErrors = [err63];
}
else {
vErrors.push(err63);
}
errors++;
}
if((typeof data30 == "number") && (isFinite(data30))){
if(data30 > 10000000 || isNaN(data30)){
const err64 = {instancePath:instancePath+"/limits/maxConnections",schemaPath:"#/properties/limits/properties/maxConnections/maximum",keyword:"maximum",params:{comparison: "<=", limit: 10000000},message:"must be <= 10000000",schema:10000000,parentSchema:schema11.properties.limits.properties.maxConnections,data:data30};
if(vErrors === null){
vErrors = [err64];
}
else {
vErrors.push(err64);
}
errors++;
}
if(data30 < 1 || isNaN(data30)){
const err65 = {instancePath:instancePath+"/limits/maxConnections",schemaPath:"#/properties/limits/properties/maxConnections/minimum",keyword:"minimum",params:{comparison: ">=", limit: 1},message:"must be >= 1",schema:1,parentSchema:schema11.properties.limits.properties.maxConnections,data:data30};
if(vErrors === null){
vErrors = [err65];
}
else {
vErrors.push(err65);
}
errors++;
}
}
}
if(data29.maxHandshakes !== undefined){
let data31 = data29.maxHandshakes;
if(!(((typeof data31 == "number") && (!(data31 % 1) && !isNaN(data31))) && (isFinite(data31)))){
const err66 = {instancePath:instancePath+"/limits/maxHandshakes",schemaPath:"#/properties/limits/properties/maxHandshakes/type",keyword:"type",params:{type: "integer"},message:"must be integer",schema:schema11.properties.limits.properties.maxHandshakes.type,parentSchema:schema11.properties.limits.properties.maxHandshakes,data:data31};
if(vErrors === null){
vErrors = [err66];
}
else {
vErrors.push(err66);
}
errors++;
}
if((typeof data31 == "number") && (isFinite(data31))){
if(data31 > 10000000 || isNaN(data31)){
const err67 = {instancePath:instancePath+"/limits/maxHandshakes",schemaPath:"#/properties/limits/properties/maxHandshakes/maximum",keyword:"maximum",params:{comparison: "<=", limit: 10000000},message:"must be <= 10000000",schema:10000000,parentSchema:schema11.properties.limits.properties.maxHandshakes,data:data31};
if(vErrors === null){
vErrors = [err67];
}
else {
vErrors.push(err67);
}
errors++;
}
if(data31 < 1 || isNaN(data31)){
const err68 = {instancePath:instancePath+"/limits/maxHandshakes",schemaPath:"#/properties/limits/properties/maxHandshakes/minimum",keyword:"minimum",params:{comparison: ">=", limit: 1},message:"must be >= 1",schema:1,parentSchema:schema11.properties.limits.properties.maxHandshakes,data:data31};
if(vErrors === null){
vErrors = [err68];
}
else {
vErrors.push(err68);
}
errors++;
}
}
}
if(data29.maxHandshakesPerSource !== undefined){
let data32 = data29.maxHandshakesPerSource;
if(!(((typeof data32 == "number") && (!(data32 % 1) && !isNaN(data32))) && (isFinite(data32)))){
const err69 = {instancePath:instancePath+"/limits/maxHandshakesPerSource",schemaPath:"#/properties/limits/properties/maxHandshakesPerSource/type",keyword:"type",params:{type: "integer"},message:"must be integer",schema:schema11.properties.limits.properties.maxHandshakesPerSource.type,parentSchema:schema11.properties.limits.properties.maxHandshakesPerSource,data:data32};
if(vErrors === null){
vErrors = [err69];
}
else {
vErrors.push(err69);
}
errors++;
}
if((typeof data32 == "number") && (isFinite(data32))){
if(data32 > 10000000 || isNaN(data32)){
const err70 = {instancePath:instancePath+"/limits/maxHandshakesPerSource",schemaPath:"#/properties/limits/properties/maxHandshakesPerSource/maximum",keyword:"maximum",params:{comparison: "<=", limit: 10000000},message:"must be <= 10000000",schema:10000000,parentSchema:schema11.properties.limits.properties.maxHandshakesPerSource,data:data32};
if(vErrors === null){
vErrors = [err70];
}
else {
vErrors.push(err70);
}
errors++;
}
if(data32 < 1 || isNaN(data32)){
const err71 = {instancePath:instancePath+"/limits/maxHandshakesPerSource",schemaPath:"#/properties/limits/properties/maxHandshakesPerSource/minimum",keyword:"minimum",params:{comparison: ">=", limit: 1},message:"must be >= 1",schema:1,parentSchema:schema11.properties.limits.properties.maxHandshakesPerSource,data:data32};
if(vErrors === null){
vErrors = [err71];
}
else {
vErrors.push(err71);
}
errors++;
}
}
}
if(data29.handshakeTimeout !== undefined){
let data33 = data29.handshakeTimeout;
if((typeof data33 !== "string") && (!((typeof data33 == "number") && (isFinite(data33))))){
const err72 = {instancePath:instancePath+"/limits/handshakeTimeout",schemaPath:"#/properties/limits/properties/handshakeTimeout/type",keyword:"type",params:{type: schema11.properties.limits.properties.handshakeTimeout.type},message:"must be string,number",schema:schema11.properties.limits.properties.handshakeTimeout.type,parentSchema:schema11.properties.limits.properties.handshakeTimeout,data:data33};
if(vErrors === null){
vErrors = [err72];
}
else {
vErrors.push(err72);
}
errors++;
}
}
if(data29.idleTimeout !== undefined){
let data34 = data29.idleTimeout;
if((typeof data34 !== "string") && (!((typeof data34 == "number") && (isFinite(data34))))){
const err73 = {instancePath:instancePath+"/limits/idleTimeout",schemaPath:"#/properties/limits/properties/idleTimeout/type",keyword:"type",params:{type: schema11.properties.limits.properties.idleTimeout.type},message:"must be string,number",schema:schema11.properties.limits.properties.idleTimeout.type,parentSchema:schema11.properties.limits.properties.idleTimeout,data:data34};
if(vErrors === null){
vErrors = [err73];
}
else {
vErrors.push(err73);
}
errors++;
}
}
if(data29.maxConnectionAge !== undefined){
let data35 = data29.maxConnectionAge;
if((typeof data35 !== "string") && (!((typeof data35 == "number") && (isFinite(data35))))){
const err74 = {instancePath:instancePath+"/limits/maxConnectionAge",schemaPath:"#/properties/limits/properties/maxConnectionAge/type",keyword:"type",params:{type: schema11.properties.limits.properties.maxConnectionAge.type},message:"must be string,number",schema:schema11.properties.limits.properties.maxConnectionAge.type,parentSchema:schema11.properties.limits.properties.maxConnectionAge,data:data35};
if(vErrors === null){
vErrors = [err74];
}
else {
vErrors.push(err74);
}
errors++;
}
}
if(data29.drainTimeout !== undefined){
let data36 = data29.drainTimeout;
if((typeof data36 !== "string") && (!((typeof data36 == "number") && (isFinite(data36))))){
const err75 = {instancePath:instancePath+"/limits/drainTimeout",schemaPath:"#/properties/limits/properties/drainTimeout/type",keyword:"type",params:{type: schema11.properties.limits.properties.drainTimeout.type},message:"must be string,number",schema:schema11.properties.limits.properties.drainTimeout.type,parentSchema:schema11.properties.limits.properties.drainTimeout,data:data36};
if(vErrors === null){
vErrors = [err75];
}
else {
vErrors.push(err75);
}
errors++;
}
}
}
else {
const err76 = {instancePath:instancePath+"/limits",schemaPath:"#/properties/limits/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.limits.type,parentSchema:schema11.properties.limits,data:data29};
if(vErrors === null){
vErrors = [err76];
}
else {
vErrors.push(err76);
}
errors++;
}
}
if(data.admin !== undefined){
let data37 = data.admin;
if(data37 && typeof data37 == "object" && !Array.isArray(data37)){
for(const key9 in data37){
if(!(key9 === "listen")){
const err77 = {instancePath:instancePath+"/admin",schemaPath:"#/properties/admin/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key9},message:"must NOT have additional properties",schema:false,parentSchema:schema11.properties.admin,data:data37};
if(vErrors === null){
vErrors = [err77];
}
else {
vErrors.push(err77);
}
errors++;
}
}
if(data37.listen !== undefined){
let data38 = data37.listen;
if(typeof data38 === "string"){
if(func3(data38) < 1){
const err78 = {instancePath:instancePath+"/admin/listen",schemaPath:"#/properties/admin/properties/listen/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.admin.properties.listen,data:data38};
if(vErrors === null){
vErrors = [err78];
}
else {
vErrors.push(err78);
}
errors++;
}
}
else {
const err79 = {instancePath:instancePath+"/admin/listen",schemaPath:"#/properties/admin/properties/listen/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.admin.properties.listen.type,parentSchema:schema11.properties.admin.properties.listen,data:data38};
if(vErrors === null){
vErrors = [err79];
}
else {
vErrors.push(err79);
}
errors++;
}
}
}
else {
const err80 = {instancePath:instancePath+"/admin",schemaPath:"#/properties/admin/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.admin.type,parentSchema:schema11.properties.admin,data:data37};
if(vErrors === null){
vErrors = [err80];
}
else {
vErrors.push(err80);
}
errors++;
}
}
if(data.log !== undefined){
let data39 = data.log;
if(data39 && typeof data39 == "object" && !Array.isArray(data39)){
for(const key10 in data39){
if(!(key10 === "level")){
const err81 = {instancePath:instancePath+"/log",schemaPath:"#/properties/log/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key10},message:"must NOT have additional properties",schema:false,parentSchema:schema11.properties.log,data:data39};
if(vErrors === null){
vErrors = [err81];
}
else {
vErrors.push(err81);
}
errors++;
}
}
if(data39.level !== undefined){
let data40 = data39.level;
if(typeof data40 !== "string"){
const err82 = {instancePath:instancePath+"/log/level",schemaPath:"#/properties/log/properties/level/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.log.properties.level.type,parentSchema:schema11.properties.log.properties.level,data:data40};
if(vErrors === null){
vErrors = [err82];
}
else {
vErrors.push(err82);
}
errors++;
}
if(!((((data40 === "debug") || (data40 === "info")) || (data40 === "warn")) || (data40 === "error"))){
const err83 = {instancePath:instancePath+"/log/level",schemaPath:"#/properties/log/properties/level/enum",keyword:"enum",params:{allowedValues: schema11.properties.log.properties.level.enum},message:"must be equal to one of the allowed values",schema:schema11.properties.log.properties.level.enum,parentSchema:schema11.properties.log.properties.level,data:data40};
if(vErrors === null){
vErrors = [err83];
}
else {
vErrors.push(err83);
}
errors++;
}
}
}
else {
const err84 = {instancePath:instancePath+"/log",schemaPath:"#/properties/log/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.log.type,parentSchema:schema11.properties.log,data:data39};
if(vErrors === null){
vErrors = [err84];
}
else {
vErrors.push(err84);
}
errors++;
}
}
if(data.capture !== undefined){
let data41 = data.capture;
if(typeof data41 !== "string"){
const err85 = {instancePath:instancePath+"/capture",schemaPath:"#/properties/capture/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.capture.type,parentSchema:schema11.properties.capture,data:data41};
if(vErrors === null){
vErrors = [err85];
}
else {
vErrors.push(err85);
}
errors++;
}
if(!((data41 === "iptables") || (data41 === "none"))){
const err86 = {instancePath:instancePath+"/capture",schemaPath:"#/properties/capture/enum",keyword:"enum",params:{allowedValues: schema11.properties.capture.enum},message:"must be equal to one of the allowed values",schema:schema11.properties.capture.enum,parentSchema:schema11.properties.capture,data:data41};
if(vErrors === null){
vErrors = [err86];
}
else {
vErrors.push(err86);
}
errors++;
}
}
}
else {
const err87 = {instancePath,schemaPath:"#/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.type,parentSchema:schema11,data};
if(vErrors === null){
vErrors = [err87];
}
else {
vErrors.push(err87);
}
errors++;
}
validate10.errors = vErrors;
return errors === 0;
}

