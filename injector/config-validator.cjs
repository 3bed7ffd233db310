// Generated from injector/config-schema.ts by scripts/config-validators.ts (npm run validators): do not edit.
"use strict";
module.exports = validate10;
module.exports.default = validate10;
const schema11 = {"type":"object","additionalProperties":false,"required":["trustDomain","caAddress","image"],"properties":{"trustDomain":{"type":"string","minLength":1,"description":"the trust domain of the mesh, e.g. cluster.local"},"caAddress":{"type":"string","minLength":1,"description":"the CA's gRPC address as HOST:PORT, e.g. tollgate-ca.tollgate-system.svc:8443"},"caSpiffeId":{"type":"string","minLength":1,"description":"the CA's SPIFFE ID, e.g. spiffe://cluster.local/tollgate/ca"},"image":{"type":"string","minLength":1,"description":"the Tollgate image, e.g. ghcr.io/tollgate/tollgate:0.1.0"},"imagePullPolicy":{"type":"string","enum":["Always","IfNotPresent","Never"],"description":"Always, IfNotPresent or Never"},"nativeSidecar":{"type":"boolean","description":"true or false"},"capture":{"type":"string","enum":["iptables","none"],"description":"iptables or none"},"tokenExpirationSeconds":{"type":"integer","minimum":600,"maximum":86400,"description":"a number of seconds"},"logLevel":{"type":"string","enum":["debug","info","warn","error"],"description":"debug, info, warn or error"},"resources":{"type":"object","additionalProperties":false,"properties":{"requests":{"type":"object","additionalProperties":{"type":["string","number"],"description":"a quantity such as 50m or 64Mi"},"description":"a mapping of resource names to quantities, e.g. {cpu: 50m, memory: 64Mi}"},"limits":{"type":"object","additionalProperties":{"type":["string","number"],"description":"a quantity such as 50m or 64Mi"},"description":"a mapping of resource names to quantities, e.g. {cpu: 50m, memory: 64Mi}"}},"description":"a mapping with requests and limits"}}};
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
if(data.caAddress === undefined){
const err1 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "caAddress"},message:"must have required property '"+"caAddress"+"'",schema:schema11.required,parentSchema:schema11,data};
if(vErrors === null){
vErrors = [err1];
}
else {
vErrors.push(err1);
}
errors++;
}
if(data.image === undefined){
const err2 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "image"},message:"must have required property '"+"image"+"'",schema:schema11.required,parentSchema:schema11,data};
if(vErrors === null){
vErrors = [err2];
}
else {
vErrors.push(err2);
}
errors++;
}
for(const key0 in data){
if(!(func2.call(schema11.properties, key0))){
const err3 = {instancePath,schemaPath:"#/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key0},message:"must NOT have additional properties",schema:false,parentSchema:schema11,data};
if(vErrors === null){
vErrors = [err3];
}
else {
vErrors.push(err3);
}
errors++;
}
}
if(data.trustDomain !== undefined){
let data0 = data.trustDomain;
if(typeof data0 === "string"){
if(func3(data0) < 1){
const err4 = {instancePath:instancePath+"/trustDomain",schemaPath:"#/properties/trustDomain/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.trustDomain,data:data0};
if(vErrors === null){
vErrors = [err4];
}
else {
vErrors.push(err4);
}
errors++;
}
}
else {
const err5 = {instancePath:instancePath+"/trustDomain",schemaPath:"#/properties/trustDomain/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.trustDomain.type,parentSchema:schema11.properties.trustDomain,data:data0};
if(vErrors === null){
vErrors = [err5];
}
else {
vErrors.push(err5);
}
errors++;
}
}
if(data.caAddress !== undefined){
let data1 = data.caAddress;
if(typeof data1 === "string"){
if(func3(data1) < 1){
const err6 = {instancePath:instancePath+"/caAddress",schemaPath:"#/properties/caAddress/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.caAddress,data:data1};
if(vErrors === null){
vErrors = [err6];
}
else {
vErrors.push(err6);
}
errors++;
}
}
else {
const err7 = {instancePath:instancePath+"/caAddress",schemaPath:"#/properties/caAddress/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.caAddress.type,parentSchema:schema11.properties.caAddress,data:data1};
if(vErrors === null){
vErrors = [err7];
}
else {
vErrors.push(err7);
}
errors++;
}
}
if(data.caSpiffeId !== undefined){
let data2 = data.caSpiffeId;
if(typeof data2 === "string"){
if(func3(data2) < 1){
const err8 = {instancePath:instancePath+"/caSpiffeId",schemaPath:"#/properties/caSpiffeId/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.caSpiffeId,data:data2};
if(vErrors === null){
vErrors = [err8];
}
else {
vErrors.push(err8);
}
errors++;
}
}
else {
const err9 = {instancePath:instancePath+"/caSpiffeId",schemaPath:"#/properties/caSpiffeId/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.caSpiffeId.type,parentSchema:schema11.properties.caSpiffeId,data:data2};
if(vErrors === null){
vErrors = [err9];
}
else {
vErrors.push(err9);
}
errors++;
}
}
if(data.image !== undefined){
let data3 = data.image;
if(typeof data3 === "string"){
if(func3(data3) < 1){
const err10 = {instancePath:instancePath+"/image",schemaPath:"#/properties/image/minLength",keyword:"minLength",params:{limit: 1},message:"must NOT have fewer than 1 characters",schema:1,parentSchema:schema11.properties.image,data:data3};
if(vErrors === null){
vErrors = [err10];
}
else {
vErrors.push(err10);
}
errors++;
}
}
else {
const err11 = {instancePath:instancePath+"/image",schemaPath:"#/properties/image/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.image.type,parentSchema:schema11.properties.image,data:data3};
if(vErrors === null){
vErrors = [err11];
}
else {
vErrors.push(err11);
}
errors++;
}
}
if(data.imagePullPolicy !== undefined){
let data4 = data.imagePullPolicy;
if(typeof data4 !== "string"){
const err12 = {instancePath:instancePath+"/imagePullPolicy",schemaPath:"#/properties/imagePullPolicy/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.imagePullPolicy.type,parentSchema:schema11.properties.imagePullPolicy,data:data4};
if(vErrors === null){
vErrors = [err12];
}
else {
vErrors.push(err12);
}
errors++;
}
if(!(((data4 === "Always") || (data4 === "IfNotPresent")) || (data4 === "Never"))){
const err13 = {instancePath:instancePath+"/imagePullPolicy",schemaPath:"#/properties/imagePullPolicy/enum",keyword:"enum",params:{allowedValues: schema11.properties.imagePullPolicy.enum},message:"must be equal to one of the allowed values",schema:schema11.properties.imagePullPolicy.enum,parentSchema:schema11.properties.imagePullPolicy,data:data4};
if(vErrors === null){
vErrors = [err13];
}
else {
vErrors.push(err13);
}
errors++;
}
}
if(data.nativeSidecar !== undefined){
let data5 = data.nativeSidecar;
if(typeof data5 !== "boolean"){
const err14 = {instancePath:instancePath+"/nativeSidecar",schemaPath:"#/properties/nativeSidecar/type",keyword:"type",params:{type: "boolean"},message:"must be boolean",schema:schema11.properties.nativeSidecar.type,parentSchema:schema11.properties.nativeSidecar,data:data5};
if(vErrors === null){
vErrors = [err14];
}
else {
vErrors.push(err14);
}
errors++;
}
}
if(data.capture !== undefined){
let data6 = data.capture;
if(typeof data6 !== "string"){
const err15 = {instancePath:instancePath+"/capture",schemaPath:"#/properties/capture/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.capture.type,parentSchema:schema11.properties.capture,data:data6};
if(vErrors === null){
vErrors = [err15];
}
else {
vErrors.push(err15);
}
errors++;
}
if(!((data6 === "iptables") || (data6 === "none"))){
const err16 = {instancePath:instancePath+"/capture",schemaPath:"#/properties/capture/enum",keyword:"enum",params:{allowedValues: schema11.properties.capture.enum},message:"must be equal to one of the allowed values",schema:schema11.properties.capture.enum,parentSchema:schema11.properties.capture,data:data6};
if(vErrors === null){
vErrors = [err16];
}
else {
vErrors.push(err16);
}
errors++;
}
}
if(data.tokenExpirationSeconds !== undefined){
let data7 = data.tokenExpirationSeconds;
if(!(((typeof data7 == "number") && (!(data7 % 1) && !isNaN(data7))) && (isFinite(data7)))){
const err17 = {instancePath:instancePath+"/tokenExpirationSeconds",schemaPath:"#/properties/tokenExpirationSeconds/type",keyword:"type",params:{type: "integer"},message:"must be integer",schema:schema11.properties.tokenExpirationSeconds.type,parentSchema:schema11.properties.tokenExpirationSeconds,data:data7};
if(vErrors === null){
vErrors = [err17];
}
else {
vErrors.push(err17);
}
errors++;
}
if((typeof data7 == "number") && (isFinite(data7))){
if(data7 > 86400 || isNaN(data7)){
const err18 = {instancePath:instancePath+"/tokenExpirationSeconds",schemaPath:"#/properties/tokenExpirationSeconds/maximum",keyword:"maximum",params:{comparison: "<=", limit: 86400},message:"must be <= 86400",schema:86400,parentSchema:schema11.properties.tokenExpirationSeconds,data:data7};
if(vErrors === null){
vErrors = [err18];
}
else {
vErrors.push(err18);
}
errors++;
}
if(data7 < 600 || isNaN(data7)){
const err19 = {instancePath:instancePath+"/tokenExpirationSeconds",schemaPath:"#/properties/tokenExpirationSeconds/minimum",keyword:"minimum",params:{comparison: ">=", limit: 600},message:"must be >= 600",schema:600,parentSchema:schema11.properties.tokenExpirationSeconds,data:data7};
if(vErrors === null){
vErrors = [err19];
}
else {
vErrors.push(err19);
}
errors++;
}
}
}
if(data.logLevel !== undefined){
let data8 = data.logLevel;
if(typeof data8 !== "string"){
const err20 = {instancePath:instancePath+"/logLevel",schemaPath:"#/properties/logLevel/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.logLevel.type,parentSchema:schema11.properties.logLevel,data:data8};
if(vErrors === null){
vErrors = [err20];
}
else {
vErrors.push(err20);
}
errors++;
}
if(!((((data8 === "debug") || (data8 === "info")) || (data8 === "warn")) || (data8 === "error"))){
const err21 = {instancePath:instancePath+"/logLevel",schemaPath:"#/properties/logLevel/enum",keyword:"enum",params:{allowedValues: schema11.properties.logLevel.enum},message:"must be equal to one of the allowed values",schema:schema11.properties.logLevel.enum,parentSchema:schema11.properties.logLevel,data:data8};
if(vErrors === null){
vErrors = [err21];
}
else {
vErrors.push(err21);
}
errors++;
}
}
if(data.resources !== undefined){
let data9 = data.resources;
if(data9 && typeof data9 == "object" && !Array.isArray(data9)){
for(const key1 in data9){
if(!((key1 === "requests") || (key1 === "limits"))){
const err22 = {instancePath:instancePath+"/resources",schemaPath:"#/properties/resources/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key1},message:"must NOT have additional properties",schema:false,parentSchema:schema11.properties.resources,data:data9};
if(vErrors === null){
vErrors = [err22];
}
else {
vErrors.push(err22);
}
errors++;
}
}
if(data9.requests !== undefined){
let data10 = data9.requests;
if(data10 && typeof data10 == "object" && !Array.isArray(data10)){
for(const key2 in data10){
let data11 = data10[key2];
if((typeof data11 !== "string") && (!((typeof data11 == "number") && (isFinite(data11))))){
const err23 = {instancePath:instancePath+"/resources/requests/" + key2.replace(/~/g, "~0").replace(/\//g, "~1"),schemaPath:"#/properties/resources/properties/requests/additionalProperties/type",keyword:"type",params:{type: schema11.properties.resources.properties.requests.additionalProperties.type},message:"must be string,number",schema:schema11.properties.resources.properties.requests.additionalProperties.type,parentSchema:schema11.properties.resources.properties.requests.additionalProperties,data:data11};
if(vErrors === null){
vErrors = [err23];
}
else {
vErrors.push(err23);
}
errors++;
}
}
}
else {
const err24 = {instancePath:instancePath+"/resources/requests",schemaPath:"#/properties/resources/properties/requests/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.resources.properties.requests.type,parentSchema:schema11.properties.resources.properties.requests,data:data10};
if(vErrors === null){
vErrors = [err24];
}
else {
vErrors.push(err24);
}
errors++;
}
}
if(data9.limits !== undefined){
let data12 = data9.limits;
if(data12 && typeof data12 == "object" && !Array.isArray(data12)){
for(const key3 in data12){
let data13 = data12[key3];
if((typeof data13 !== "string") && (!((typeof data13 == "number") && (isFinite(data13))))){
const err25 = {instancePath:instancePath+"/resources/limits/" + key3.replace(/~/g, "~0").replace(/\//g, "~1"),schemaPath:"#/properties/resources/properties/limits/additionalProperties/type",keyword:"type",params:{type: schema11.properties.resources.properties.limits.additionalProperties.type},message:"must be string,number",schema:schema11.properties.resources.properties.limits.additionalProperties.type,parentSchema:schema11.properties.resources.properties.limits.additionalProperties,data:data13};
if(vErrors === null){
vErrors = [err25];
}
else {
vErrors.push(err25);
}
errors++;
}
}
}
else {
const err26 = {instancePath:instancePath+"/resources/limits",schemaPath:"#/properties/resources/properties/limits/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.resources.properties.limits.type,parentSchema:schema11.properties.resources.properties.limits,data:data12};
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
const err27 = {instancePath:instancePath+"/resources",schemaPath:"#/properties/resources/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.resources.type,parentSchema:schema11.properties.resources,data:data9};
if(vErrors === null){
vErrors = [err27];
}
else {
vErrors.push(err27);
}
errors++;
}
}
}
else {
const err28 = {instancePath,schemaPath:"#/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.type,parentSchema:schema11,data};
if(vErrors === null){
vErrors = [err28];
}
else {
vErrors.push(err28);
}
errors++;
}
validate10.errors = vErrors;
return errors === 0;
}

