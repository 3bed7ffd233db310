// Generated from sidecar/policy-schema.ts by scripts/config-validators.ts (npm run validators): do not edit.
"use strict";
module.exports = validate10;
module.exports.default = validate10;
const schema11 = {"type":"object","additionalProperties":false,"required":["ports"],"properties":{"trustDomains":{"type":"array","minItems":1,"items":{"type":"string"}},"ports":{"type":"object","additionalProperties":{"$ref":"#/$defs/section"}},"default":{"$ref":"#/$defs/section"}},"$defs":{"section":{"type":"object","additionalProperties":false,"required":["allow"],"properties":{"allow":{"type":"array","items":{"type":"string"}}}}}};
const schema12 = {"type":"object","additionalProperties":false,"required":["allow"],"properties":{"allow":{"type":"array","items":{"type":"string"}}}};

function validate10(data, {instancePath="", parentData, parentDataProperty, rootData=data}={}){
let vErrors = null;
let errors = 0;
if(data && typeof data == "object" && !Array.isArray(data)){
if(data.ports === undefined){
const err0 = {instancePath,schemaPath:"#/required",keyword:"required",params:{missingProperty: "ports"},message:"must have required property '"+"ports"+"'",schema:schema11.required,parentSchema:schema11,data};
if(vErrors === null){
vErrors = [err0];
}
else {
vErrors.push(err0);
}
errors++;
}
for(const key0 in data){
if(!(((key0 === "trustDomains") || (key0 === "ports")) || (key0 === "default"))){
const err1 = {instancePath,schemaPath:"#/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key0},message:"must NOT have additional properties",schema:false,parentSchema:schema11,data};
if(vErrors === null){
vErrors = [err1];
}
else {
vErrors.push(err1);
}
errors++;
}
}
if(data.trustDomains !== undefined){
let data0 = data.trustDomains;
if(Array.isArray(data0)){
if(data0.length < 1){
const err2 = {instancePath:instancePath+"/trustDomains",schemaPath:"#/properties/trustDomains/minItems",keyword:"minItems",params:{limit: 1},message:"must NOT have fewer than 1 items",schema:1,parentSchema:schema11.properties.trustDomains,data:data0};
if(vErrors === null){
vErrors = [err2];
}
else {
vErrors.push(err2);
}
errors++;
}
const len0 = data0.length;
for(let i0=0; i0<len0; i0++){
let data1 = data0[i0];
if(typeof data1 !== "string"){
const err3 = {instancePath:instancePath+"/trustDomains/" + i0,schemaPath:"#/properties/trustDomains/items/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema11.properties.trustDomains.items.type,parentSchema:schema11.properties.trustDomains.items,data:data1};
if(vErrors === null){
vErrors = [err3];
}
else {
vErrors.push(err3);
}
errors++;
}
}
}
else {
const err4 = {instancePath:instancePath+"/trustDomains",schemaPath:"#/properties/trustDomains/type",keyword:"type",params:{type: "array"},message:"must be array",schema:schema11.properties.trustDomains.type,parentSchema:schema11.properties.trustDomains,data:data0};
if(vErrors === null){
vErrors = [err4];
}
else {
vErrors.push(err4);
}
errors++;
}
}
if(data.ports !== undefined){
let data2 = data.ports;
if(data2 && typeof data2 == "object" && !Array.isArray(data2)){
for(const key1 in data2){
let data3 = data2[key1];
if(data3 && typeof data3 == "object" && !Array.isArray(data3)){
if(data3.allow === undefined){
const err5 = {instancePath:instancePath+"/ports/" + key1.replace(/~/g, "~0").replace(/\//g, "~1"),schemaPath:"#/$defs/section/required",keyword:"required",params:{missingProperty: "allow"},message:"must have required property '"+"allow"+"'",schema:schema12.required,parentSchema:schema12,data:data3};
if(vErrors === null){
vErrors = [err5];
}
else {
vErrors.push(err5);
}
errors++;
}
for(const key2 in data3){
if(!(key2 === "allow")){
const err6 = {instancePath:instancePath+"/ports/" + key1.replace(/~/g, "~0").replace(/\//g, "~1"),schemaPath:"#/$defs/section/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key2},message:"must NOT have additional properties",schema:false,parentSchema:schema12,data:data3};
if(vErrors === null){
vErrors = [err6];
}
else {
vErrors.push(err6);
}
errors++;
}
}
if(data3.allow !== undefined){
let data4 = data3.allow;
if(Array.isArray(data4)){
const len1 = data4.length;
for(let i1=0; i1<len1; i1++){
let data5 = data4[i1];
if(typeof data5 !== "string"){
const err7 = {instancePath:instancePath+"/ports/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/allow/" + i1,schemaPath:"#/$defs/section/properties/allow/items/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema12.properties.allow.items.type,parentSchema:schema12.properties.allow.items,data:data5};
if(vErrors === null){
vErrors = [err7];
}
else {
vErrors.push(err7);
}
errors++;
}
}
}
else {
const err8 = {instancePath:instancePath+"/ports/" + key1.replace(/~/g, "~0").replace(/\//g, "~1")+"/allow",schemaPath:"#/$defs/section/properties/allow/type",keyword:"type",params:{type: "array"},message:"must be array",schema:schema12.properties.allow.type,parentSchema:schema12.properties.allow,data:data4};
if(vErrors === null){
vErrors = [err8];
}
else {
vErrors.push(err8);
}
errors++;
}
}
}
else {
const err9 = {instancePath:instancePath+"/ports/" + key1.replace(/~/g, "~0").replace(/\//g, "~1"),schemaPath:"#/$defs/section/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema12.type,parentSchema:schema12,data:data3};
if(vErrors === null){
vErrors = [err9];
}
else {
vErrors.push(err9);
}
errors++;
}
}
}
else {
const err10 = {instancePath:instancePath+"/ports",schemaPath:"#/properties/ports/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.properties.ports.type,parentSchema:schema11.properties.ports,data:data2};
if(vErrors === null){
vErrors = [err10];
}
else {
vErrors.push(err10);
}
errors++;
}
}
if(data.default !== undefined){
let data6 = data.default;
if(data6 && typeof data6 == "object" && !Array.isArray(data6)){
if(data6.allow === undefined){
const err11 = {instancePath:instancePath+"/default",schemaPath:"#/$defs/section/required",keyword:"required",params:{missingProperty: "allow"},message:"must have required property '"+"allow"+"'",schema:schema12.required,parentSchema:schema12,data:data6};
if(vErrors === null){
vErrors = [err11];
}
else {
vErrors.push(err11);
}
errors++;
}
for(const key3 in data6){
if(!(key3 === "allow")){
const err12 = {instancePath:instancePath+"/default",schemaPath:"#/$defs/section/additionalProperties",keyword:"additionalProperties",params:{additionalProperty: key3},message:"must NOT have additional properties",schema:false,parentSchema:schema12,data:data6};
if(vErrors === null){
vErrors = [err12];
}
else {
vErrors.push(err12);
}
errors++;
}
}
if(data6.allow !== undefined){
let data7 = data6.allow;
if(Array.isArray(data7)){
const len2 = data7.length;
for(let i2=0; i2<len2; i2++){
let data8 = data7[i2];
if(typeof data8 !== "string"){
const err13 = {instancePath:instancePath+"/default/allow/" + i2,schemaPath:"#/$defs/section/properties/allow/items/type",keyword:"type",params:{type: "string"},message:"must be string",schema:schema12.properties.allow.items.type,parentSchema:schema12.properties.allow.items,data:data8};
if(vErrors === null){
vErrors = [err13];
}
else {
vErrors.push(err13);
}
errors++;
}
}
}
else {
const err14 = {instancePath:instancePath+"/default/allow",schemaPath:"#/$defs/section/properties/allow/type",keyword:"type",params:{type: "array"},message:"must be array",schema:schema12.properties.allow.type,parentSchema:schema12.properties.allow,data:data7};
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
const err15 = {instancePath:instancePath+"/default",schemaPath:"#/$defs/section/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema12.type,parentSchema:schema12,data:data6};
if(vErrors === null){
vErrors = [err15];
}
else {
vErrors.push(err15);
}
errors++;
}
}
}
else {
const err16 = {instancePath,schemaPath:"#/type",keyword:"type",params:{type: "object"},message:"must be object",schema:schema11.type,parentSchema:schema11,data};
if(vErrors === null){
vErrors = [err16];
}
else {
vErrors.push(err16);
}
errors++;
}
validate10.errors = vErrors;
return errors === 0;
}

